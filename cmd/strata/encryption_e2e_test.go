package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestEncryptedMessagesAreCiphertextOnTheBrokerAndOpenOnlyWithARecipientsKey:
// on a real standalone, `strata produce --encryption-key` for two keys (a
// P-256 key made by strata tokens create-key-pair and an RSA key) stores
// ciphertext: a consumer without keys gets the messages marked encrypted,
// their payloads unreadable. `strata consume --decryption-key` with
// either key prints the plaintext and no encryption property. A consumer
// with other keys fails each message under CryptoFail (it comes back
// later, and opens for a consumer with the key), acknowledges it under
// CryptoDiscard, and hands it out encrypted under CryptoConsume. Readers
// decrypt with ReaderDecryption. A chunked message over the size limit is
// encrypted and opened whole.
func TestEncryptedMessagesAreCiphertextOnTheBrokerAndOpenOnlyWithARecipientsKey(t *testing.T) {
	dir := t.TempDir()
	ecPriv, ecPub := filepath.Join(dir, "ops.pem"), filepath.Join(dir, "ops.pub")
	if _, errOut, err := run(t, "", "tokens", "create-key-pair", "--private-key", ecPriv, "--public-key", ecPub); err != nil {
		t.Fatalf("create-key-pair: %v\n%s", err, errOut)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, rsaPub := filepath.Join(dir, "vault.pem"), filepath.Join(dir, "vault.pub")
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for path, block := range map[string]*pem.Block{
		rsaPriv: {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)},
		rsaPub:  {Type: "PUBLIC KEY", Bytes: pubDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const topic = "public/default/secret"
	cli("alpha-secret\nbeta-secret\n", "produce", "--topic", topic, "--encryption-key", "ops="+ecPub, "--encryption-key", "vault="+rsaPub)

	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	subscribe := func(sub string, opts ...client.ConsumerOption) *client.Consumer {
		t.Helper()
		cons, err := c.Subscribe(ctx, topic, sub, append(opts, client.ConsumerInitialPosition(client.Earliest),
			client.ConsumerNackRedeliveryDelay(100*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		return cons
	}
	raw := subscribe("raw")
	for range 2 {
		m, err := raw.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Encrypted || bytes.Contains(m.Payload, []byte("secret")) {
			t.Fatalf("without keys: encrypted %v, payload %q", m.Encrypted, m.Payload)
		}
	}
	raw.Close()

	for _, key := range []string{"ops=" + ecPriv, "vault=" + rsaPriv} {
		out := cli("", "consume", "--topic", topic, "--subscription", "cli-"+key[:3], "--position", "earliest", "--count", "2",
			"--timeout", "30s", "--output", "jsonl", "--decryption-key", key)
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var j client.JSONMessage
			if err := json.Unmarshal([]byte(line), &j); err != nil {
				t.Fatal(err)
			}
			if len(j.Properties) != 0 || j.Payload == nil {
				t.Fatalf("with %s: %s", key, line)
			}
			got = append(got, *j.Payload)
		}
		if strings.Join(got, ",") != "alpha-secret,beta-secret" {
			t.Fatalf("with %s: %v", key, got)
		}
	}

	// Other keys, under each failure action.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongKeys := func(string) (crypto.PrivateKey, error) { return other, nil }
	failing := subscribe("fail", client.ConsumerDecryption(wrongKeys, client.CryptoFail))
	if _, err := failing.Receive(ctx); !errors.Is(err, client.ErrDecryption) {
		t.Fatalf("CryptoFail: %v, want ErrDecryption", err)
	}
	failing.Close()
	rightKeys := func(name string) (crypto.PrivateKey, error) {
		if name == "vault" {
			return rsaKey, nil
		}
		return nil, errors.New("unknown")
	}
	retried := subscribe("fail", client.ConsumerDecryption(rightKeys, client.CryptoFail))
	if m, err := retried.Receive(ctx); err != nil || string(m.Payload) != "alpha-secret" || m.Encrypted {
		t.Fatalf("the failed message with the right key: %v, %v", m, err)
	}
	retried.Close()

	discarding := subscribe("discard", client.ConsumerDecryption(wrongKeys, client.CryptoDiscard))
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if m, err := discarding.Receive(shortCtx); err == nil {
		t.Fatalf("CryptoDiscard handed out %v", m)
	}
	cancel()
	waitFor(t, 30*time.Second, "the discarded messages acknowledged", func() bool {
		st, err := c.Admin().TopicStats(ctx, topic)
		if err != nil {
			return false
		}
		for _, sub := range st.Subscriptions {
			if sub.Name == "discard" {
				return sub.Backlog == 0
			}
		}
		return false
	})
	discarding.Close()
	consuming := subscribe("consume", client.ConsumerDecryption(wrongKeys, client.CryptoConsume))
	if m, err := consuming.Receive(ctx); err != nil || !m.Encrypted {
		t.Fatalf("CryptoConsume: %v, %v", m, err)
	}
	consuming.Close()

	// Readers: with the key, the plaintext; without, marked encrypted.
	for _, opts := range [][]client.ReaderOption{{client.ReaderDecryption(rightKeys, client.CryptoFail)}, nil} {
		r, err := c.NewReader(ctx, topic, append(opts, client.ReaderStartEarliest())...)
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if decrypting := opts != nil; m.Encrypted == decrypting || (decrypting && string(m.Payload) != "alpha-secret") {
			t.Fatalf("reader (decrypting %v): encrypted %v, payload %q", decrypting, m.Encrypted, m.Payload)
		}
		r.Close()
	}

	// A chunked message over the topic's size limit, encrypted whole.
	big := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16)
	p, err := c.NewProducer(ctx, "public/default/secret-big", client.ProducerChunking(0),
		client.ProducerEncryption(client.EncryptionKey{Name: "vault", Key: &rsaKey.PublicKey}))
	if err != nil {
		t.Fatal(err)
	}
	bigCons, err := c.Subscribe(ctx, "public/default/secret-big", "s", client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerDecryption(rightKeys, client.CryptoFail))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: big}); err != nil {
		t.Fatal(err)
	}
	if m, err := bigCons.Receive(ctx); err != nil || !bytes.Equal(m.Payload, big) {
		t.Fatalf("the chunked encrypted message: %v", err)
	}
}
