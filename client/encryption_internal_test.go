package client

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
)

// testKeys makes an RSA, a P-256 ECDSA and an X25519 key pair.
func testKeys(t *testing.T) (pubs []EncryptionKey, privs map[string]crypto.PrivateKey) {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubs = []EncryptionKey{{"rsa", &r.PublicKey}, {"p256", &e.PublicKey}, {"x25519", x.PublicKey()}}
	privs = map[string]crypto.PrivateKey{"rsa": r, "p256": e, "x25519": x}
	return pubs, privs
}

// received is what a consumer gets for a sealed message.
func received(m *ProducerMessage) *Message {
	return &Message{Payload: m.Payload, Properties: m.Properties, Key: m.Key}
}

func readerOf(privs map[string]crypto.PrivateKey, names ...string) DecryptionKeyReader {
	return func(name string) (crypto.PrivateKey, error) {
		for _, n := range names {
			if n == name {
				return privs[name], nil
			}
		}
		return nil, errors.New("no such key")
	}
}

func TestEachRecipientKeyAloneOpensASealedPayloadAndNothingElseDoes(t *testing.T) {
	pubs, privs := testKeys(t)
	enc, err := newEncryptor(pubs)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("card 4111 1111 1111 1111")
	sealed, err := enc.seal(&ProducerMessage{Key: "k", Payload: plain, Properties: map[string]string{"app": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed.Payload, plain[:8]) || sealed.Key != "k" {
		t.Fatalf("sealed payload %q, key %q", sealed.Payload, sealed.Key)
	}
	for _, name := range []string{"rsa", "p256", "x25519"} {
		m := received(sealed)
		if err := newDecryptor(readerOf(privs, name), CryptoFail).open(m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(m.Payload, plain) || len(m.Properties) != 1 || m.Properties["app"] != "1" {
			t.Fatalf("%s: opened %q with properties %v", name, m.Payload, m.Properties)
		}
	}
	// Keys that were not recipients open nothing.
	_, otherPrivs := testKeys(t)
	m := received(sealed)
	if err := newDecryptor(readerOf(otherPrivs, "rsa", "p256", "x25519"), CryptoFail).open(m); !errors.Is(err, ErrDecryption) {
		t.Fatalf("other keys: %v, want ErrDecryption", err)
	}
	if !bytes.Equal(m.Payload, sealed.Payload) {
		t.Fatal("a failed open changed the message")
	}
	if err := newDecryptor(readerOf(privs), CryptoFail).open(received(sealed)); !errors.Is(err, ErrDecryption) {
		t.Fatalf("no key: %v, want ErrDecryption", err)
	}
}

func TestATamperedPayloadDoesNotOpen(t *testing.T) {
	pubs, privs := testKeys(t)
	enc, err := newEncryptor(pubs[:1])
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := enc.seal(&ProducerMessage{Payload: []byte("pay 10 EUR")})
	if err != nil {
		t.Fatal(err)
	}
	m := received(sealed)
	m.Payload = bytes.Clone(m.Payload)
	m.Payload[0] ^= 1
	if err := newDecryptor(readerOf(privs, "rsa"), CryptoFail).open(m); !errors.Is(err, ErrDecryption) {
		t.Fatalf("a flipped bit: %v, want ErrDecryption", err)
	}
}

func TestTheDataKeyIsReplacedAfterTheRotationPeriod(t *testing.T) {
	pubs, privs := testKeys(t)
	enc, err := newEncryptor(pubs[1:2])
	if err != nil {
		t.Fatal(err)
	}
	first, _ := enc.seal(&ProducerMessage{Payload: []byte("a")})
	again, _ := enc.seal(&ProducerMessage{Payload: []byte("a")})
	if first.Properties[encKeyPrefix+"p256"] != again.Properties[encKeyPrefix+"p256"] {
		t.Fatal("the data key changed within the rotation period")
	}
	if bytes.Equal(first.Payload, again.Payload) {
		t.Fatal("two messages were sealed with the same nonce")
	}
	enc.mu.Lock()
	enc.mu.since = enc.mu.since.Add(-EncryptionKeyRotation)
	enc.mu.Unlock()
	later, _ := enc.seal(&ProducerMessage{Payload: []byte("a")})
	if later.Properties[encKeyPrefix+"p256"] == first.Properties[encKeyPrefix+"p256"] {
		t.Fatal("the data key outlived the rotation period")
	}
	d := newDecryptor(readerOf(privs, "p256"), CryptoFail)
	for _, s := range []*ProducerMessage{first, later} {
		if err := d.open(received(s)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewEncryptorRefusesWhatIsNotARecipientKey(t *testing.T) {
	pubs, _ := testKeys(t)
	for _, keys := range [][]EncryptionKey{nil, {{Name: "", Key: pubs[0].Key}}, {{Name: "x", Key: "not a key"}}} {
		if _, err := newEncryptor(keys); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v: %v, want ErrInvalidArgument", keys, err)
		}
	}
}
