// A Go crypto/tls echo server whose session ticket keys come from a file of base64 lines
// (tlsresume keys export/sync --format go), given to SetSessionTicketKeys in the file's order
// (the first encrypts). The file is read again when its modification time changes (checked
// every 200 ms), as a sync rewrites it. Prints "listening", then "keys N" after each load.
// usage: goserver PORT CERT KEY KEYFILE
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func load(path string) ([][32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][32]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%s:%d: not a base64 32-byte key", path, i+1)
		}
		var k [32]byte
		copy(k[:], raw)
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key", path)
	}
	return keys, nil
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: goserver PORT CERT KEY KEYFILE")
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	keyfile := os.Args[4]
	var seen time.Time
	reload := func() {
		st, err := os.Stat(keyfile)
		if err != nil || st.ModTime().Equal(seen) {
			return
		}
		keys, err := load(keyfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		seen = st.ModTime()
		cfg.SetSessionTicketKeys(keys)
		fmt.Printf("keys %d\n", len(keys))
	}
	reload()
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			reload()
		}
	}()
	ln, err := tls.Listen("tcp", "127.0.0.1:"+os.Args[1], cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if len(line) > 0 {
					c.Write([]byte(line))
				}
				if err != nil {
					return
				}
			}
		}(c)
	}
}
