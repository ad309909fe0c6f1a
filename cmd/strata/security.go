package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mq/strata/client"
)

// TLS and token authentication on the client port of a serving node (serve,
// standalone) and in the client commands. The bookies, etcd and the HTTP
// port stay plain and open: they belong on the cluster's private network
// (docs/operations.md).

// addServerSecurityFlags adds the serving node's TLS and token flags.
func addServerSecurityFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("tls-cert-file", "", "PEM certificate (chain) for TLS on the client port; with --tls-key-file. Clients then use strata+tls://")
	f.String("tls-key-file", "", "PEM private key of --tls-cert-file")
	f.String("tls-client-ca-file", "", "PEM certificate authorities: clients must present a certificate they signed (mutual TLS)")
	f.String("auth-token-file", "", "file of the tokens clients must present, one per line (# comments): every call without one fails as UNAUTHENTICATED")
}

// serverAuthTokens reads --auth-token-file (nil when not given).
func serverAuthTokens(cmd *cobra.Command) ([]string, error) {
	path, _ := cmd.Flags().GetString("auth-token-file")
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth tokens: %w", err)
	}
	var tokens []string
	for line := range strings.Lines(string(b)) {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("auth tokens: %s holds none", path)
	}
	return tokens, nil
}

// serverTLS builds the TLS configuration the flags ask for (nil: none).
func serverTLS(cmd *cobra.Command) (*tls.Config, error) {
	f := cmd.Flags()
	certFile, _ := f.GetString("tls-cert-file")
	keyFile, _ := f.GetString("tls-key-file")
	caFile, _ := f.GetString("tls-client-ca-file")
	switch {
	case certFile == "" && keyFile == "" && caFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("TLS: give both --tls-cert-file and --tls-key-file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// addClientSecurityFlags adds the client commands' TLS and token flags.
func addClientSecurityFlags(flags *pflag.FlagSet) {
	flags.String("tls-ca-file", "", "with strata+tls://: PEM certificate authorities to verify the nodes with (default: the system's)")
	flags.String("tls-cert-file", "", "with strata+tls://: PEM client certificate, for nodes that require one (with --tls-key-file)")
	flags.String("tls-key-file", "", "PEM private key of --tls-cert-file")
	flags.String("auth-token-file", "", "file holding the token to present, for nodes that require one (default from $STRATA_AUTH_TOKEN_FILE)")
}

// clientSecurityOptions are the SDK options of the client commands' TLS
// and token flags (addClientSecurityFlags).
func clientSecurityOptions(cmd *cobra.Command) ([]client.Option, error) {
	str := func(name string) string { v, _ := cmd.Flags().GetString(name); return v }
	var opts []client.Option
	if ca := str("tls-ca-file"); ca != "" {
		opts = append(opts, client.TLSCAFile(ca))
	}
	if cert, key := str("tls-cert-file"), str("tls-key-file"); cert != "" || key != "" {
		opts = append(opts, client.TLSClientCert(cert, key))
	}
	path := str("auth-token-file")
	if path == "" {
		path = os.Getenv("STRATA_AUTH_TOKEN_FILE")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth token: %w", err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("auth token: %s is empty", path)
		}
		opts = append(opts, client.AuthToken(token))
	}
	return opts, nil
}
