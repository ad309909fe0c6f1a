package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCertReloaderKeepsTheLastGoodPairWhileTheFilesDoNotLoad: a renewal
// caught halfway (a new certificate beside the old key) is not served; the
// previous certificate is, until the pair loads again.
func TestCertReloaderKeepsTheLastGoodPairWhileTheFilesDoNotLoad(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	put := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(pki.path(from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	put("server.pem", cert)
	put("server-key.pem", key)
	r, err := newCertReloader(cert, key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.get(nil)
	put("server-renewed.pem", cert) // the key is still the old one
	r.checked = time.Time{}         // as if a second had passed
	if got, _ := r.get(nil); got != first {
		t.Fatal("a certificate without its key was served")
	}
	put("server-renewed-key.pem", key)
	r.checked = time.Time{}
	if got, _ := r.get(nil); got == first {
		t.Fatal("the renewed pair was not served once complete")
	}
}
