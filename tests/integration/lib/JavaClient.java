// Java 17 JSSE as an application uses it: one SSLContext, N connections in turn, each sending
// one HTTP request and reading the answer. Resumption is JSSE's own (its client session cache).
// With KEYSTORE (PKCS12, password "changeit") it presents that client certificate, and prints
// each answer's "client_cert:" line (what the backend learnt of it) as "identity=...". Each
// connection prints the server certificate's key type ("key=EC", "key=RSA").
// usage: java JavaClient.java HOST PORT TLSv1.2|TLSv1.3 N [KEYSTORE]     prints "answers=K"
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

public class JavaClient {
    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int n = Integer.parseInt(args[3]);
        TrustManager[] trustAll = {new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] c, String a) {}
            public void checkServerTrusted(X509Certificate[] c, String a) {}
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
        }};
        KeyManager[] keys = null;
        if (args.length > 4) {
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (FileInputStream f = new FileInputStream(args[4])) {
                store.load(f, "changeit".toCharArray());
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(store, "changeit".toCharArray());
            keys = kmf.getKeyManagers();
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(keys, trustAll, null);
        int answers = 0;
        for (int i = 0; i < n; i++) {
            try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(host, port)) {
                s.setSoTimeout(10000);
                s.setEnabledProtocols(new String[] {args[2]});
                s.startHandshake();
                System.out.println("key=" + s.getSession().getPeerCertificates()[0].getPublicKey()
                        .getAlgorithm());
                OutputStream out = s.getOutputStream();
                out.write(("GET /java" + i + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                out.flush();
                InputStream in = s.getInputStream();
                String answer = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
                if (answer.contains("hello from the backend")) {
                    answers++;
                }
                for (String line : answer.split("\n")) {
                    if (line.startsWith("client_cert: ")) {
                        System.out.println("identity=" + line.substring(13));
                    }
                }
            }
        }
        System.out.println("answers=" + answers);
    }
}
