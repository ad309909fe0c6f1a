package miniotest

import (
	"errors"
	"net"
	"testing"
)

// A MinIO started on an address another process listens on logs that it
// cannot listen and stays up without serving: the start must say so
// (errPortInUse, which Start answers by picking other ports) instead of
// waiting for a server that never comes, or taking the other process for
// it.
func TestAStartOnAnAddressAlreadyInUseReportsPortInUse(t *testing.T) {
	bin := Binary()
	if bin == "" {
		t.Skip("no minio binary (set STRATA_MINIO_BIN or run `make tools`)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{Endpoint: l.Addr().String(), console: freeAddr(t),
		AccessKey: AccessKey, SecretKey: SecretKey, Bucket: Bucket,
		t: t, bin: bin, dir: t.TempDir()}
	s.mu.Lock()
	err = s.startLocked()
	s.mu.Unlock()
	if err == nil {
		s.Stop()
		t.Fatal("MinIO started on an address another listener holds")
	}
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("start on a taken address: %v, want errPortInUse", err)
	}
	if s.cmd != nil {
		t.Fatal("the failed start kept its process")
	}
}
