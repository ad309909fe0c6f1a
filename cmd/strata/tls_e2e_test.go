package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/metadata"
)

// testPKI writes a certificate authority, a server certificate it signed
// for 127.0.0.1 and a renewal of it, a client certificate it signed, and a
// second, unrelated authority, as PEM files in a temporary directory.
type testPKI struct{ dir string }

func (p testPKI) path(name string) string { return filepath.Join(p.dir, name) }

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	p := testPKI{dir: t.TempDir()}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(p.path(name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serial := int64(1)
	issue := func(name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.Subject = pkix.Name{CommonName: name}
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", kder)
		return cert, key
	}
	caTmpl := func() *x509.Certificate {
		return &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	ca, caKey := issue("ca", caTmpl(), nil, nil)
	issue("other-ca", caTmpl(), nil, nil)
	issue("server", &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	issue("server-renewed", &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	issue("client", &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	return p
}

// TestTLSStandaloneServesOnlyClientsItCanVerifyAndThatVerifyIt: with
// --tls-cert-file, --tls-key-file and --tls-client-ca-file, a standalone
// serves the client commands and the SDK over strata+tls:// when they
// trust its authority and present a certificate it signed; a plain client,
// one without a certificate, and one that trusts another authority all
// fail, and TLS options with a strata:// URL are refused before anything
// is sent. The loadtest runs over TLS as well.
func TestTLSStandaloneServesOnlyClientsItCanVerifyAndThatVerifyIt(t *testing.T) {
	pki := newTestPKI(t)
	s := newStandalone(t)
	s.extraArgs = []string{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"),
		"--tls-client-ca-file", pki.path("ca.pem")}
	s.start()
	url := "strata+tls://" + s.grpc
	tlsFlags := []string{"--url", url, "--tls-ca-file", pki.path("ca.pem"),
		"--tls-cert-file", pki.path("client.pem"), "--tls-key-file", pki.path("client-key.pem")}
	if _, errOut, err := run(t, "one\ntwo\n", append([]string{"produce", "--topic", "secure"}, tlsFlags...)...); err != nil {
		t.Fatalf("produce over TLS: %v\n%s", err, errOut)
	}
	out, errOut, err := run(t, "", append([]string{"consume", "--topic", "secure", "--subscription", "s", "--position", "earliest",
		"--count", "2", "--timeout", "20s"}, tlsFlags...)...)
	if err != nil || !strings.Contains(out, "one") || !strings.Contains(out, "two") {
		t.Fatalf("consume over TLS: %q, %v\n%s", out, err, errOut)
	}
	// The loadtest, which checks that nothing acknowledged was lost, too.
	if _, stderr, code := runBin(t, 90*time.Second, append([]string{"loadtest", "--duration", "1s", "--warmup", "0s", "--rate", "200",
		"--size", "100", "--quiet"}, tlsFlags...)...); code != 0 {
		t.Fatalf("loadtest over TLS: exit %d\n%s", code, stderr)
	}

	ctx := testContext(t, time.Minute)
	for _, tc := range []struct {
		name string
		url  string
		opts []client.Option
	}{
		{"plain client", s.url(), nil},
		{"no client certificate", url, []client.Option{client.TLSCAFile(pki.path("ca.pem"))}},
		{"another authority", url, []client.Option{client.TLSCAFile(pki.path("other-ca.pem")),
			client.TLSClientCert(pki.path("client.pem"), pki.path("client-key.pem"))}},
	} {
		c, err := client.New(tc.url, append(tc.opts, client.OperationTimeout(2*time.Second))...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := c.Admin().ListTopics(ctx, ""); err == nil {
			t.Fatalf("%s: listed topics", tc.name)
		}
		c.Close()
	}
	if _, err := client.New(s.url(), client.TLSCAFile(pki.path("ca.pem"))); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("TLS options with a strata:// URL: %v, want ErrInvalidArgument", err)
	}

	// A tls.Config of the caller's, alone or completed by the file options
	// (on a clone: the caller's stays as it was).
	caPEM, err := os.ReadFile(pki.path("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.path("client.pem"), pki.path("client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	partial := &tls.Config{RootCAs: pool}
	for name, opts := range map[string][]client.Option{
		"TLSConfig":                   {client.TLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})},
		"TLSConfig and TLSClientCert": {client.TLSConfig(partial), client.TLSClientCert(pki.path("client.pem"), pki.path("client-key.pem"))},
		"TLSConfig with a certificate, and TLSCAFile": {client.TLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}), client.TLSCAFile(pki.path("ca.pem"))},
	} {
		c, err := client.New(url, append(opts, client.OperationTimeout(10*time.Second))...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := c.Admin().ListTopics(ctx, ""); err != nil {
			t.Fatalf("%s: list topics: %v", name, err)
		}
		c.Close()
	}
	if len(partial.Certificates) != 0 {
		t.Fatal("TLSClientCert changed the caller's tls.Config")
	}
}

// TestTokenAuthRefusesCallsWithoutAKnownToken: a standalone with
// --auth-token-file (over TLS, as the docs advise) serves the client
// commands that present one of its tokens, by flag or from
// $STRATA_AUTH_TOKEN_FILE, and refuses calls without a token or with
// another one as ErrUnauthenticated.
func TestTokenAuthRefusesCallsWithoutAKnownToken(t *testing.T) {
	pki := newTestPKI(t)
	tokens := filepath.Join(pki.dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# tokens of the apps\nsecret-one\n\nsecret-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(pki.dir, "my-token")
	if err := os.WriteFile(mine, []byte("secret-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStandalone(t)
	s.extraArgs = []string{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"), "--auth-token-file", tokens}
	s.start()
	url := "strata+tls://" + s.grpc
	flags := []string{"--url", url, "--tls-ca-file", pki.path("ca.pem")}
	if _, errOut, err := run(t, "hello\n", append([]string{"produce", "--topic", "guarded", "--auth-token-file", mine}, flags...)...); err != nil {
		t.Fatalf("produce with a token: %v\n%s", err, errOut)
	}
	t.Setenv("STRATA_AUTH_TOKEN_FILE", mine)
	out, errOut, err := run(t, "", append([]string{"consume", "--topic", "guarded", "--subscription", "s", "--position", "earliest",
		"--count", "1", "--timeout", "20s"}, flags...)...)
	if err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("consume with the token from the environment: %q, %v\n%s", out, err, errOut)
	}

	ctx := testContext(t, time.Minute)
	for name, opts := range map[string][]client.Option{
		"no token":      nil,
		"unknown token": {client.AuthToken("secret-three")},
	} {
		c, err := client.New(url, append(opts, client.TLSCAFile(pki.path("ca.pem")), client.OperationTimeout(5*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Admin().ListTopics(ctx, ""); !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("%s: %v, want ErrUnauthenticated", name, err)
		}
		c.Close()
	}
}

// TestARenewedCertificateIsServedWithoutARestart: a standalone serving TLS
// reads its certificate files again when they change, so a renewal on disk
// reaches new connections without a restart, and clients go on.
func TestARenewedCertificateIsServedWithoutARestart(t *testing.T) {
	pki := newTestPKI(t)
	live, liveKey := filepath.Join(pki.dir, "live.pem"), filepath.Join(pki.dir, "live-key.pem")
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(pki.path(from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("server.pem", live)
	copyFile("server-key.pem", liveKey)
	s := newStandalone(t)
	s.extraArgs = []string{"--tls-cert-file", live, "--tls-key-file", liveKey}
	s.start()
	caPEM, err := os.ReadFile(pki.path("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	served := func() string {
		conn, err := tls.Dial("tcp", s.grpc, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := served()
	copyFile("server-renewed-key.pem", liveKey)
	copyFile("server-renewed.pem", live)
	waitFor(t, 30*time.Second, "the renewed certificate served", func() bool { return served() != before })
	url := "strata+tls://" + s.grpc
	if _, errOut, err := run(t, "hello\n", "produce", "--topic", "renewed", "--url", url, "--tls-ca-file", pki.path("ca.pem")); err != nil {
		t.Fatalf("produce after the renewal: %v\n%s", err, errOut)
	}
}

// TestServingNodesReachBookiesOverTLS: on a real cluster whose bookies
// serve TLS (--tls-cert-file) and require client certificates
// (--tls-client-ca-file), serving nodes given the authority
// (--bookie-tls-ca-file) and a certificate it signed
// (--bookie-tls-cert-file) write and read every message over it; a plain
// client, and a TLS client without a certificate, are refused by a bookie.
func TestServingNodesReachBookiesOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	pki := newTestPKI(t)
	ctx := testContext(t, 3*time.Minute)
	cluster, _, c := startProcessCluster(t, ctx, chaos.ClusterConfig{
		BookieArgs: func(a chaos.NodeAddrs) []string {
			return append(chaos.DefaultBookieArgs(a), "--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"),
				"--tls-client-ca-file", pki.path("ca.pem"))
		},
		ServeArgs: func(a chaos.NodeAddrs, cc chaos.ClusterConfig) []string {
			return append(chaos.DefaultServeArgs(a, cc), "--bookie-tls-ca-file", pki.path("ca.pem"),
				"--bookie-tls-cert-file", pki.path("client.pem"), "--bookie-tls-key-file", pki.path("client-key.pem"))
		},
	})
	const topic = "public/default/over-tls"
	p, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var acked []int
	for i := range 50 {
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "pause-%07d", i)}); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, i)
	}
	checkConsumedExactlyOnce(t, ctx, c, topic, acked)

	store, err := metadata.Open(ctx, metadata.Config{Endpoints: cluster.EtcdEndpoints(), Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bookies, err := store.ListBookies(ctx)
	if err != nil || len(bookies) == 0 {
		t.Fatalf("bookies %v %v", bookies, err)
	}
	roots, err := loadCertPool(pki.path("ca.pem"), "CA")
	if err != nil {
		t.Fatal(err)
	}
	for name, creds := range map[string]credentials.TransportCredentials{
		"a plain client":                     insecure.NewCredentials(),
		"a TLS client without a certificate": credentials.NewTLS(&tls.Config{RootCAs: roots}),
	} {
		cc, err := grpc.NewClient(bookies[0].Addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = bookiepb.NewBookieClient(cc).ReadLAC(rctx, &bookiepb.ReadLACRequest{LedgerId: 1})
		cancel()
		cc.Close()
		if err == nil {
			t.Fatalf("%s read from a bookie that requires client certificates", name)
		}
	}
}
