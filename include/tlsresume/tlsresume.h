/* The whole public API of libtlsresume. (The GnuTLS adapter, libtlsresume-gnutls, has its own
 * header, tlsresume/gnutls.h, which needs GnuTLS's.) */
#ifndef TLSRESUME_TLSRESUME_H
#define TLSRESUME_TLSRESUME_H

#include <tlsresume/cache.h>
#include <tlsresume/client.h>
#include <tlsresume/clock.h>
#include <tlsresume/error.h>
#include <tlsresume/fleet.h>
#include <tlsresume/log.h>
#include <tlsresume/memory.h>
#include <tlsresume/proxy.h>
#include <tlsresume/ssl.h>
#include <tlsresume/tickets.h>

#define TLSR_VERSION "0.1.0"

#endif
