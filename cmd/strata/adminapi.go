package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/serving/adminhttp"
)

// The HTTP port of a serving node carries, beside health and metrics, the
// REST admin API and the console (package adminhttp). They call the node's
// own client port with the caller's token, so they check what that port
// checks: with tokens, a call without one fails. A client port that serves
// TLS (tokens travel encrypted, client certificates may be required) needs
// an HTTP port that does too (--http-tls, which asks for client
// certificates when the client port does), or the API stays off. A port
// listening on loopback answers only loopback host names (DNS rebinding),
// and browsers' cross-site requests that change anything are refused.

// addHTTPFlags adds the flags of the HTTP port's TLS and admin API.
func addHTTPFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Bool("http-tls", false, "serve the HTTP port over TLS with the client port's certificate (--tls-cert-file), asking for client certificates when the client port does")
	f.Bool("admin-api", true, "serve the REST admin API (/admin/v2) and the console (/console) on the HTTP port")
	f.String("node-client-ca-file", "", "PEM certificate authorities the admin API verifies serving nodes with when it calls them over TLS (default: the certificates in --tls-cert-file, enough for this node alone)")
	f.String("node-client-cert-file", "", "PEM certificate the admin API presents to serving nodes that require client certificates, with --node-client-key-file (default: --tls-cert-file, which then needs the client-auth usage)")
	f.String("node-client-key-file", "", "PEM private key of --node-client-cert-file")
}

// httpListener wraps the HTTP listener in TLS when --http-tls asks for it.
func httpListener(cmd *cobra.Command, lis net.Listener, serverTLS *tls.Config) (net.Listener, error) {
	on, _ := cmd.Flags().GetBool("http-tls")
	if !on || lis == nil {
		return lis, nil
	}
	if serverTLS == nil {
		return nil, fmt.Errorf("--http-tls needs --tls-cert-file and --tls-key-file")
	}
	cfg := serverTLS.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return tls.NewListener(lis, cfg), nil
}

// adminGateway builds the REST admin API onto the node's client port at
// grpcAddr (nil when it is off).
func adminGateway(cmd *cobra.Command, grpcAddr, httpAddr string, serverTLS *tls.Config, log *slog.Logger) (*adminhttp.Gateway, error) {
	f := cmd.Flags()
	if on, _ := f.GetBool("admin-api"); !on {
		return nil, nil
	}
	cfg := adminhttp.Config{URL: "strata://" + grpcAddr, Log: log, AllowedHosts: loopbackHosts(httpAddr)}
	if serverTLS != nil {
		if httpTLS, _ := f.GetBool("http-tls"); !httpTLS {
			log.Warn("the REST admin API and console are off: the client port serves TLS and the HTTP port does not (give --http-tls)")
			return nil, nil
		}
		cc, err := adminClientTLS(cmd, serverTLS)
		if err != nil {
			return nil, err
		}
		cfg.URL = "strata+tls://" + grpcAddr
		cfg.ClientOptions = []client.Option{client.TLSConfig(cc)}
	}
	return adminhttp.New(cfg)
}

// adminClientTLS is the TLS configuration the admin API dials nodes with:
// it trusts --node-client-ca-file (default: the node's own certificate
// file) and presents --node-client-cert-file (default: the node's own
// certificate) where one is asked for.
func adminClientTLS(cmd *cobra.Command, serverTLS *tls.Config) (*tls.Config, error) {
	str := func(name string) string { v, _ := cmd.Flags().GetString(name); return v }
	path := str("node-client-ca-file")
	if path == "" {
		path = str("tls-cert-file")
	}
	pool, err := loadCertPool(path, "admin API trust")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	switch cert, key := str("node-client-cert-file"), str("node-client-key-file"); {
	case cert == "" && key == "":
		get := serverTLS.GetCertificate
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get(nil) }
	case cert == "" || key == "":
		return nil, fmt.Errorf("give both --node-client-cert-file and --node-client-key-file")
	default:
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("admin API client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// loopbackHosts answers the host names a port listening at addr answers
// to: loopback names when it listens on loopback, any (nil) otherwise.
func loopbackHosts(addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		return []string{"localhost", "127.0.0.1", "::1", host}
	}
	// Listening on other addresses, the node is meant to be reached by
	// names it cannot know (DNS names, load balancers): no check.
	return nil
}

// mounts combines mount functions, skipping nil ones.
func mounts(fns ...func(*http.ServeMux)) func(*http.ServeMux) {
	return func(mux *http.ServeMux) {
		for _, fn := range fns {
			if fn != nil {
				fn(mux)
			}
		}
	}
}
