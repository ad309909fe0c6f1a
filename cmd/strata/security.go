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
	"github.com/strata-mq/strata/serving"
)

// TLS, token authentication and authorization on the client port of a
// serving node (serve, standalone), and TLS and tokens in the client
// commands. The bookies, etcd and the HTTP
// port stay plain and open: they belong on the cluster's private network
// (docs/operations.md).

// addServerSecurityFlags adds the serving node's TLS, authentication and
// authorization flags.
func addServerSecurityFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("tls-cert-file", "", "PEM certificate (chain) for TLS on the client port; with --tls-key-file. Clients then use strata+tls://")
	f.String("tls-key-file", "", "PEM private key of --tls-cert-file")
	f.String("tls-client-ca-file", "", "PEM certificate authorities: clients must present a certificate they signed (mutual TLS)")
	f.String("auth-token-file", "", "file of the static tokens clients may present, one per line as TOKEN or ROLE TOKEN (# comments): every call without a valid token fails as UNAUTHENTICATED")
	f.String("auth-jwt-secret-key-file", "", "accept JWTs signed with this secret (HS256; base64, as strata tokens create-secret-key writes it); the subject is the role")
	f.String("auth-jwt-public-key-file", "", "accept JWTs signed with the private key of this PEM public key (RSA, ECDSA or Ed25519, as strata tokens create-key-pair writes it)")
	f.Bool("authorization", false, "check every call's role: superusers may do everything, other roles what their namespace grants allow (strata namespaces grant-permission)")
	f.StringSlice("superuser-roles", nil, "roles that may do everything (comma-separated), with --authorization")
}

// serverAuth builds the node's authentication and authorization from the
// flags (addServerSecurityFlags).
func serverAuth(cmd *cobra.Command) (serving.AuthConfig, error) {
	var c serving.AuthConfig
	f := cmd.Flags()
	c.Authorization, _ = f.GetBool("authorization")
	c.SuperUserRoles, _ = f.GetStringSlice("superuser-roles")
	if path, _ := f.GetString("auth-token-file"); path != "" {
		tokens, err := readServerTokens(path)
		if err != nil {
			return c, err
		}
		c.Tokens = tokens
	}
	secret, _ := f.GetString("auth-jwt-secret-key-file")
	public, _ := f.GetString("auth-jwt-public-key-file")
	switch {
	case secret != "" && public != "":
		return c, fmt.Errorf("give --auth-jwt-secret-key-file or --auth-jwt-public-key-file, not both")
	case secret != "":
		key, err := readSecretKey(secret)
		if err != nil {
			return c, err
		}
		c.JWTKey = key
	case public != "":
		key, err := readPublicKey(public)
		if err != nil {
			return c, err
		}
		c.JWTKey = key
	}
	if len(c.SuperUserRoles) > 0 && !c.Authorization {
		return c, fmt.Errorf("--superuser-roles needs --authorization")
	}
	return c, nil
}

// readServerTokens reads a static token file: TOKEN or ROLE TOKEN per line.
func readServerTokens(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth tokens: %w", err)
	}
	tokens := map[string]string{}
	for line := range strings.Lines(string(b)) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		switch fields := strings.Fields(t); len(fields) {
		case 1:
			tokens[fields[0]] = ""
		case 2:
			tokens[fields[1]] = fields[0]
		default:
			return nil, fmt.Errorf("auth tokens: %s: a line is TOKEN or ROLE TOKEN, not %d words", path, len(fields))
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
