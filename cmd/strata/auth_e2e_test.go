package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/strata-mq/strata/client"
)

// TestAuthorizationLetsEachRoleDoOnlyWhatItsNamespaceGrantsOnARealStandalone:
// on a real standalone with JWT authentication (keys and tokens made by
// `strata tokens`) and --authorization, a role with no grant can neither
// produce nor consume; a superuser's grant-permission lets it do exactly
// the actions granted, in that namespace only; a revoke takes them back;
// the calls for superusers stay refused; and a token that is missing,
// expired or signed with another key is unauthenticated.
func TestAuthorizationLetsEachRoleDoOnlyWhatItsNamespaceGrantsOnARealStandalone(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.key")
	tool := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(t, "", args...)
		if err != nil {
			t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return strings.TrimSpace(out)
	}
	tool("tokens", "create-secret-key", "--output", secret)
	adminToken := tool("tokens", "create", "--subject", "admin", "--secret-key-file", secret)
	appToken := tool("tokens", "create", "--subject", "app", "--secret-key-file", secret, "--expiry", "1h")
	if out := tool("tokens", "validate", appToken, "--secret-key-file", secret); !strings.HasPrefix(out, "subject app, expires 20") {
		t.Fatalf("tokens validate printed %q", out)
	}
	// A key pair's public key verifies the pair's tokens, and no token of
	// another algorithm.
	priv, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	tool("tokens", "create-key-pair", "--private-key", priv, "--public-key", pub)
	pairToken := tool("tokens", "create", "--subject", "ops", "--private-key-file", priv)
	if out := tool("tokens", "validate", pairToken, "--public-key-file", pub); out != "subject ops, expires never" {
		t.Fatalf("tokens validate with the public key printed %q", out)
	}
	if _, _, err := run(t, "", "tokens", "validate", appToken, "--public-key-file", pub); err == nil {
		t.Fatal("an HS256 token validated with an ECDSA public key")
	}
	adminFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(adminFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	s := newStandalone(t)
	s.extraArgs = []string{"--auth-jwt-secret-key-file", secret, "--authorization", "--superuser-roles", "admin"}
	s.start()
	admin := func(args ...string) string {
		t.Helper()
		return cliAt(t, s.url())("", append(args, "--auth-token-file", adminFile)...)
	}
	ctx := testContext(t, time.Minute)
	as := func(token string) *client.Client {
		t.Helper()
		return s.client(client.AuthToken(token), client.OperationTimeout(10*time.Second))
	}
	app := as(appToken)
	const topic = "acme/orders/created"
	produce := func() error {
		p, err := app.NewProducer(ctx, topic)
		if err != nil {
			return err
		}
		defer p.Close()
		_, err = p.Send(ctx, &client.ProducerMessage{Payload: []byte("order-1")})
		return err
	}
	consume := func() (string, error) {
		c, err := app.Subscribe(ctx, topic, "billing", client.ConsumerInitialPosition(client.Earliest))
		if err != nil {
			return "", err
		}
		defer c.Close()
		m, err := c.Receive(ctx)
		if err != nil {
			return "", err
		}
		return string(m.Payload), c.Ack(m)
	}

	admin("topics", "create", topic)
	if err := produce(); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("produce without a grant: %v, want ErrUnauthorized", err)
	}
	admin("namespaces", "grant-permission", "acme/orders", "--role", "app", "--actions", "produce")
	if err := produce(); err != nil {
		t.Fatalf("produce with a produce grant: %v", err)
	}
	if _, err := consume(); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("consume with only a produce grant: %v, want ErrUnauthorized", err)
	}
	if _, err := app.Admin().TopicStats(ctx, topic); err != nil {
		t.Fatalf("stats with a produce grant: %v", err)
	}
	for what, err := range map[string]error{
		"create a topic":             app.Admin().CreateTopic(ctx, "acme/orders/other", 0),
		"grant itself consume":       app.Admin().GrantPermission(ctx, "acme/orders", "app", client.ActionConsume),
		"stats of another namespace": func() error { _, err := app.Admin().TopicStats(ctx, "acme/payments/x"); return err }(),
		"list every topic":           func() error { _, err := app.Admin().ListTopics(ctx, ""); return err }(),
	} {
		if !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", what, err)
		}
	}

	admin("namespaces", "grant-permission", "acme/orders", "--role", "app", "--actions", "produce,consume")
	if got, err := consume(); err != nil || got != "order-1" {
		t.Fatalf("consume with a consume grant: %q %v", got, err)
	}
	var grants map[string][]string
	if err := json.Unmarshal([]byte(admin("namespaces", "permissions", "acme/orders")), &grants); err != nil ||
		strings.Join(grants["app"], ",") != "consume,produce" {
		t.Fatalf("permissions: %v %v", grants, err)
	}
	admin("namespaces", "revoke-permission", "acme/orders", "--role", "app")
	if err := produce(); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("produce after the revoke: %v, want ErrUnauthorized", err)
	}
	admin("topics", "grant-permission", topic, "--role", "app", "--actions", "produce")
	if err := produce(); err != nil {
		t.Fatalf("produce with a grant on the topic alone: %v", err)
	}
	if out := admin("topics", "permissions", topic); !strings.Contains(out, `"app"`) {
		t.Fatalf("topics permissions: %s", out)
	}
	admin("topics", "revoke-permission", topic, "--role", "app")
	if err := produce(); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("produce after the topic grant was revoked: %v, want ErrUnauthorized", err)
	}

	// A tenant's admin may do within it what a superuser may.
	opsToken := tool("tokens", "create", "--subject", "acme-ops", "--secret-key-file", secret)
	ops := as(opsToken)
	if err := ops.Admin().CreateTopic(ctx, "acme/orders/audit", 0); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("create before being the tenant's admin: %v, want ErrUnauthorized", err)
	}
	admin("tenants", "set-admins", "acme", "--roles", "acme-ops")
	if err := ops.Admin().CreateTopic(ctx, "acme/orders/audit", 0); err != nil {
		t.Fatalf("the tenant's admin creating a topic in it: %v", err)
	}
	if err := ops.Admin().GrantPermission(ctx, "acme/orders", "app", client.ActionProduce); err != nil {
		t.Fatalf("the tenant's admin granting in it: %v", err)
	}
	if err := produce(); err != nil {
		t.Fatalf("produce with the tenant admin's grant: %v", err)
	}
	if err := ops.Admin().CreateTopic(ctx, "globex/orders/x", 0); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("the tenant's admin creating a topic in another tenant: %v, want ErrUnauthorized", err)
	}
	if _, _, err := ops.Admin().Cluster(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("the tenant's admin listing the cluster: %v, want ErrUnauthorized", err)
	}

	key, err := os.ReadFile(secret)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(key)))
	sign := func(claims jwt.RegisteredClaims, key []byte) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for what, token := range map[string]string{
		"expired":          sign(jwt.RegisteredClaims{Subject: "admin", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}, raw),
		"another key":      sign(jwt.RegisteredClaims{Subject: "admin"}, []byte(strings.Repeat("k", 32))),
		"not a role":       sign(jwt.RegisteredClaims{Subject: "a b"}, raw),
		"no token":         "",
		"not even a token": "garbage",
	} {
		opts := []client.Option{client.OperationTimeout(10 * time.Second)}
		if token != "" {
			opts = append(opts, client.AuthToken(token))
		}
		c := s.client(opts...)
		if _, err := c.Admin().ListTopics(ctx, "acme/orders"); !errors.Is(err, client.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", what, err)
		}
	}
}
