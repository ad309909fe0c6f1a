package adminhttp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

func TestErrorStatusGivesEachKindOfFailureItsHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		code errcode.Code
		want int
	}{
		{errcode.TopicNotFound, http.StatusNotFound},
		{errcode.SubscriptionNotFound, http.StatusNotFound},
		{errcode.NamespaceNotFound, http.StatusNotFound},
		{errcode.TopicExists, http.StatusConflict},
		{errcode.SubscriptionExists, http.StatusConflict},
		{errcode.BadVersion, http.StatusConflict},
		{errcode.InvalidTopicName, http.StatusBadRequest},
		{errcode.InvalidPolicy, http.StatusBadRequest},
		{errcode.NamespaceNotEmpty, http.StatusBadRequest},
		{errcode.Unauthenticated, http.StatusUnauthorized},
		{errcode.Unauthorized, http.StatusForbidden},
		{errcode.Timeout, http.StatusGatewayTimeout},
		{errcode.Unavailable, http.StatusServiceUnavailable},
		{errcode.NotOwner, http.StatusServiceUnavailable},
		{errcode.TopicFenced, http.StatusServiceUnavailable},
		{errcode.Internal, http.StatusInternalServerError},
		{errcode.Corruption, http.StatusInternalServerError},
	} {
		if got := ErrorStatus(errcode.New(tc.code, "x")); got != tc.want {
			t.Errorf("%v: status %d, want %d", tc.code, got, tc.want)
		}
	}
	if got := ErrorStatus(errors.New("no code")); got != http.StatusInternalServerError {
		t.Errorf("an error without a code: status %d, want 500", got)
	}
}

func TestDecodePartitionsTakesAPositiveCountInEitherShape(t *testing.T) {
	for body, want := range map[string]int{"3": 3, `{"partitions": 7}`: 7, " 1\n": 1} {
		r := httptest.NewRequest("PUT", "/", strings.NewReader(body))
		if n, err := decodePartitions(r); err != nil || n != want {
			t.Errorf("%q: %d, %v; want %d", body, n, err, want)
		}
	}
	for _, body := range []string{"", "0", "-1", "2.5", `"3"`, `{"partitions": 3, "x": 1}`, "3 4", "[3]"} {
		r := httptest.NewRequest("PUT", "/", strings.NewReader(body))
		if _, err := decodePartitions(r); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%q: %v, want ErrInvalidArgument", body, err)
		}
	}
}

func TestBearerTokenAcceptsOnlyTheBearerScheme(t *testing.T) {
	for header, want := range map[string]string{"": "", "Bearer abc": "abc", "bearer  abc ": "abc"} {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if got, err := bearerToken(r); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", header, got, err, want)
		}
	}
	for _, header := range []string{"Basic YTpi", "Bearer", "Bearer   ", "abc"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", header)
		if _, err := bearerToken(r); !errors.Is(err, client.ErrUnauthenticated) {
			t.Errorf("%q: %v, want ErrUnauthenticated", header, err)
		}
	}
}

// TestGatewayKeepsAtMostMaxClientsAndClosesEvictedOnesWhenReleased: the
// least recently used token's client is closed once no request holds it;
// one still held is closed when its request releases it, not before.
func TestGatewayKeepsAtMostMaxClientsAndClosesEvictedOnesWhenReleased(t *testing.T) {
	// No node listens: the clients never connect, and a closed one answers
	// ErrClosed at once.
	g, err := New(Config{URL: "strata://127.0.0.1:1", MaxClients: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	closed := func(p *pooled) bool {
		_, err := p.c.Admin().ListTopics(context.Background(), "")
		return errors.Is(err, client.ErrClosed)
	}
	a, _ := g.acquire("a")
	g.release(a)
	held, _ := g.acquire("b") // held through the evictions below
	c, _ := g.acquire("c")    // evicts a, the least recently used
	g.release(c)
	if !closed(a) {
		t.Fatal("the evicted, idle client of token a is still open")
	}
	d, _ := g.acquire("d") // evicts b, still held
	g.release(d)
	if closed(held) {
		t.Fatal("the client of token b was closed while a request held it")
	}
	g.release(held)
	if !closed(held) {
		t.Fatal("the evicted client of token b is still open after its release")
	}
	if again, _ := g.acquire("c"); again != c {
		t.Fatal("token c got a new client while its own was kept")
	} else {
		g.release(again)
	}
	g.Close()
	if _, err := g.acquire("c"); err == nil || !closed(c) {
		t.Fatalf("after Close: acquire %v, client c closed %v", err, closed(c))
	}
}

// TestBrowsersCrossSiteWritesAndForeignHostNamesAreRefused: a request a
// browser makes for another site's page that would change something is
// refused (cross-site request forgery), as is any request naming a host a
// loopback listener does not answer to (DNS rebinding); tools that are not
// browsers, and reads, pass.
func TestBrowsersCrossSiteWritesAndForeignHostNamesAreRefused(t *testing.T) {
	g, err := New(Config{URL: "strata://127.0.0.1:1", AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mux := http.NewServeMux()
	g.Mount(mux)
	do := func(method, host string, header map[string]string) int {
		r := httptest.NewRequest(method, "http://"+host+"/admin/v2/persistent/public/default/t/terminate", nil)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	if code := do("POST", "127.0.0.1:8080", crossSite); code != http.StatusForbidden {
		t.Errorf("a cross-site browser POST: status %d, want 403", code)
	}
	for _, host := range []string{"evil.example:8080", "10.0.0.1:8080"} {
		if code := do("POST", host, nil); code != http.StatusMisdirectedRequest {
			t.Errorf("host %s: status %d, want 421", host, code)
		}
	}
	// Passed on to the node (which is not there: 503).
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080"} {
		if code := do("POST", host, nil); code != http.StatusServiceUnavailable {
			t.Errorf("a tool's POST to %s: status %d, want it passed on (503 without a node)", host, code)
		}
	}
	if code := do("POST", "localhost:8080", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusServiceUnavailable {
		t.Errorf("a same-origin browser POST: status %d, want it passed on", code)
	}
}
