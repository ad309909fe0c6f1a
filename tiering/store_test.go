package tiering

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/tiering/miniotest"
)

// storeFactory opens a fresh, empty store for one conformance test.
type storeFactory struct {
	name string
	open func(t *testing.T) Store
}

func dirFactory() storeFactory {
	return storeFactory{"dir", func(t *testing.T) Store {
		s, err := NewDirStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
}

// s3Factory starts one MinIO lazily and gives each test its own prefix.
func s3Factory(t *testing.T) storeFactory {
	srv := miniotest.Start(t)
	n := 0
	return storeFactory{"minio", func(t *testing.T) Store {
		n++
		return newTestS3(t, srv, "conf"+strings.Repeat("x", n%3)+"/"+t.Name())
	}}
}

func newTestS3(t testing.TB, srv *miniotest.Server, prefix string) *S3Store {
	s, err := NewS3Store(S3Config{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: prefix,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PartSize: minPartSize, MaxRetries: 1, RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var storeConformance = []struct {
	name string
	test func(t *testing.T, s Store)
}{
	{"PutThenGetReturnsSameBytes", testPutGet},
	{"GetRangeReturnsExactlyThoseBytes", testGetRange},
	{"GetOutsideObjectIsInvalidRange", testGetBadRange},
	{"LargeMultipartObjectRoundTrips", testLargeObject},
	{"PutReplacesWholeObject", testOverwrite},
	{"ListReturnsPrefixMatchesInKeyOrder", testList},
	{"DeleteRemovesAndIsIdempotent", testDelete},
	{"MissingObjectIsTypedNotFound", testNotFound},
	{"InvalidKeysAreRejected", testInvalidKeys},
}

// The same table runs against both implementations.
func TestDirStoreConformance(t *testing.T) { runConformance(t, dirFactory()) }
func TestS3StoreConformance(t *testing.T)  { runConformance(t, s3Factory(t)) }

func runConformance(t *testing.T, f storeFactory) {
	for _, c := range storeConformance {
		t.Run(c.name, func(t *testing.T) { c.test(t, f.open(t)) })
	}
}

func randBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func put(t *testing.T, s Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func testPutGet(t *testing.T, s Store) {
	ctx := context.Background()
	data := randBytes(1000, 1)
	put(t, s, "a/b/obj", data)
	got, err := s.Get(ctx, "a/b/obj", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v, equal=%v", err, bytes.Equal(got, data))
	}
	info, err := s.Stat(ctx, "a/b/obj")
	if err != nil || info.Size != 1000 || info.Key != "a/b/obj" {
		t.Fatalf("stat: %+v %v", info, err)
	}
	put(t, s, "empty", nil)
	if got, err := s.Get(ctx, "empty", 0, -1); err != nil || len(got) != 0 {
		t.Fatalf("get empty: %d bytes, %v", len(got), err)
	}
}

func testGetRange(t *testing.T, s Store) {
	ctx := context.Background()
	data := randBytes(4096, 2)
	put(t, s, "r", data)
	for _, r := range [][2]int64{{0, 1}, {0, 4096}, {100, 1}, {4095, 1}, {1000, 2000}, {4096, 0}, {5, -1}} {
		got, err := s.Get(ctx, "r", r[0], r[1])
		end := r[0] + r[1]
		if r[1] < 0 {
			end = 4096
		}
		if err != nil || !bytes.Equal(got, data[r[0]:end]) {
			t.Fatalf("range %v: %v (got %d bytes)", r, err, len(got))
		}
	}
}

func testGetBadRange(t *testing.T, s Store) {
	ctx := context.Background()
	put(t, s, "r", randBytes(100, 3))
	for _, r := range [][2]int64{{101, 1}, {90, 20}, {-1, 5}, {100, 1}} {
		if _, err := s.Get(ctx, "r", r[0], r[1]); !errors.Is(err, ErrInvalidRange) {
			t.Fatalf("range %v: got %v, want ErrInvalidRange", r, err)
		}
	}
}

func testLargeObject(t *testing.T, s Store) {
	ctx := context.Background()
	// Over two parts of the 5 MiB test part size: a three-part upload.
	data := randBytes(11<<20+123, 4)
	put(t, s, "big", data)
	got, err := s.Get(ctx, "big", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get big: %v", err)
	}
	off := int64(5<<20 - 10) // a range across a part boundary
	got, err = s.Get(ctx, "big", off, 20)
	if err != nil || !bytes.Equal(got, data[off:off+20]) {
		t.Fatalf("range across part boundary: %v", err)
	}
}

func testOverwrite(t *testing.T, s Store) {
	ctx := context.Background()
	put(t, s, "o", randBytes(500, 5))
	data := randBytes(200, 6)
	put(t, s, "o", data)
	got, err := s.Get(ctx, "o", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("overwrite: %v", err)
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	keys := []string{"t/a/2", "t/a/1", "t/ab", "t/b/x/y", "u/1"}
	for i, k := range keys {
		put(t, s, k, randBytes(i+1, uint64(i)))
	}
	list := func(prefix string) []string {
		var got []string
		if err := s.List(ctx, prefix, func(o ObjectInfo) error {
			got = append(got, o.Key)
			return nil
		}); err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		return got
	}
	for prefix, want := range map[string]string{
		"t/a/": "t/a/1 t/a/2", "t/a": "t/a/1 t/a/2 t/ab", "t/": "t/a/1 t/a/2 t/ab t/b/x/y",
		"": "t/a/1 t/a/2 t/ab t/b/x/y u/1", "v": "",
	} {
		if got := strings.Join(list(prefix), " "); got != want {
			t.Errorf("list %q = %q, want %q", prefix, got, want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(ctx, "t/", func(ObjectInfo) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("list stops at the callback's error: n=%d err=%v", n, err)
	}
}

func testDelete(t *testing.T, s Store) {
	ctx := context.Background()
	put(t, s, "d/x", []byte("x"))
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "d/x"); !IsNotFound(err) {
		t.Fatalf("stat after delete: %v", err)
	}
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func testNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	_, err := s.Get(ctx, "nope", 0, -1)
	if !IsNotFound(err) || errcode.IsRetriable(err) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := s.Get(ctx, "nope", 10, 5); !IsNotFound(err) {
		t.Fatalf("range get missing: %v", err)
	}
	if _, err := s.Stat(ctx, "nope"); !IsNotFound(err) {
		t.Fatalf("stat missing: %v", err)
	}
}

func testInvalidKeys(t *testing.T, s Store) {
	ctx := context.Background()
	for _, k := range []string{"", "/abs", "a/../b", "a//b", "dir/", "./x", ".tmp-x", "a\\b"} {
		err := s.Put(ctx, k, strings.NewReader("x"), 1)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("put %q: %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestS3StoreOutageIsRetriableAndRecovers(t *testing.T) {
	srv := miniotest.Start(t)
	s := newTestS3(t, srv, "outage")
	ctx := context.Background()
	put(t, s, "k", []byte("before"))
	srv.Stop()
	ctxT, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := s.Put(ctxT, "k2", strings.NewReader("during"), 6)
	if !errcode.IsRetriable(err) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put during outage: %v, want retriable ErrUnavailable", err)
	}
	if _, err := s.Get(ctxT, "k", 0, -1); !errcode.IsRetriable(err) {
		t.Fatalf("get during outage: %v, want retriable", err)
	}
	srv.Restart()
	put(t, s, "k2", []byte("after"))
	got, err := s.Get(ctx, "k", 0, -1)
	if err != nil || string(got) != "before" {
		t.Fatalf("get after restart: %q %v", got, err)
	}
}

func TestOpenStoreParsesURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, u := range []string{dir, "file://" + dir} {
		s, err := OpenStore(ctx, u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if ds, ok := s.(*DirStore); !ok || ds.Root() != dir {
			t.Fatalf("%s: got %T", u, s)
		}
	}
	s, err := OpenStore(ctx, "s3://bkt/some/prefix?endpoint=127.0.0.1:9000&secure=false&part_size=6291456")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.(*S3Store).cfg
	if cfg.Bucket != "bkt" || cfg.Prefix != "some/prefix" || cfg.Endpoint != "127.0.0.1:9000" || cfg.Secure || cfg.PartSize != 6<<20 {
		t.Fatalf("parsed %+v", cfg)
	}
	for _, bad := range []string{"", "s3:///nobucket", "s3://b?secure=maybe", "s3://b?part_size=1", "s3://b?bogus=1", "ftp://x/y", "file://host/x"} {
		if _, err := OpenStore(ctx, bad); errcode.CodeOf(err) != errcode.InvalidArgument {
			t.Errorf("%q: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestS3StorePutsLargeObjectsInParts(t *testing.T) {
	srv := miniotest.Start(t)
	s := newTestS3(t, srv, "multipart")
	put(t, s, "big", randBytes(11<<20, 9))
	info, err := srv.Client().StatObject(context.Background(), srv.Bucket, "multipart/big", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A multipart object's ETag ends in -<number of parts>.
	if !strings.HasSuffix(info.ETag, "-3") {
		t.Fatalf("ETag %q: want a three-part upload", info.ETag)
	}
}

// TestDirStorePutFsyncsTheParentOfEveryDirectoryItCreates: an object under
// directories that did not exist (a new tenant, namespace or topic) is
// durable only once each new directory's entry in its parent is: the
// directories a Put creates have their parents fsynced, as has the
// object's own directory after the rename; a Put into existing
// directories fsyncs only the object's.
func TestDirStorePutFsyncsTheParentOfEveryDirectoryItCreates(t *testing.T) {
	root := t.TempDir()
	s, err := NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var synced []string
	defer func(f func(string) error) { syncDirFunc = f }(syncDirFunc)
	syncDirFunc = func(dir string) error {
		mu.Lock()
		synced = append(synced, dir)
		mu.Unlock()
		return syncDir(dir)
	}
	put := func(key string) []string {
		synced = nil
		if err := s.Put(context.Background(), key, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		slices.Sort(synced)
		return slices.Compact(synced)
	}
	j := func(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }
	if got, want := put("t1/ns/topic/obj"), []string{root, j("t1"), j("t1", "ns"), j("t1", "ns", "topic")}; !slices.Equal(got, want) {
		t.Fatalf("a Put under three new directories fsynced %v; want %v", got, want)
	}
	if got, want := put("t1/ns/topic/obj2"), []string{j("t1", "ns", "topic")}; !slices.Equal(got, want) {
		t.Fatalf("a Put into an existing directory fsynced %v; want %v", got, want)
	}
	if got, want := put("t1/ns/other/obj"), []string{j("t1", "ns"), j("t1", "ns", "other")}; !slices.Equal(got, want) {
		t.Fatalf("a Put under one new directory fsynced %v; want %v", got, want)
	}
}
