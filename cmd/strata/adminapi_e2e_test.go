package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
)

// restCaller makes REST calls on a node's HTTP port and checks their status.
type restCaller struct {
	t     *testing.T
	web   *http.Client
	base  string // scheme://host:port
	token string // "" sends no Authorization header
}

// call makes one request and answers its status and body.
func (c restCaller) call(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.web.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// want makes a request that must answer status, and decodes the answer into
// into (when not nil).
func (c restCaller) want(status int, method, path, body string, into any) {
	c.t.Helper()
	got, out := c.call(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, out)
	}
	if into != nil {
		if err := json.Unmarshal(out, into); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, out)
		}
	}
}

// wantError makes a request that must fail with status and the Strata code.
func (c restCaller) wantError(status int, code, method, path, body string) {
	c.t.Helper()
	var e struct{ Code, Reason string }
	c.want(status, method, path, body, &e)
	if e.Code != code || e.Reason == "" {
		c.t.Fatalf("%s %s: error %+v, want code %s with a reason", method, path, e, code)
	}
}

// TestRESTAdminAPIManagesTopicsSubscriptionsAndPoliciesOnARealStandalone:
// on a real standalone's HTTP port, the /admin/v2 API creates, lists,
// grows and deletes topics; creates a subscription that then holds the
// messages produced through the SDK; peeks at them byte for byte; clears
// the backlog and rewinds it by time (the stats and a real consumer see
// both); updates one field of a namespace policy leaving the others; sets
// a topic policy the node enforces; terminates a topic so that sends fail;
// answers bad input with typed errors and the matching status; and the
// console shows the topic, its subscription and the bookie.
func TestRESTAdminAPIManagesTopicsSubscriptionsAndPoliciesOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	api := restCaller{t: t, web: http.DefaultClient, base: "http://" + s.http}
	const v2 = "/admin/v2/persistent/public/default/"

	api.want(http.StatusNoContent, "PUT", v2+"orders/partitions", "3", nil)
	api.wantError(http.StatusConflict, "TOPIC_EXISTS", "PUT", v2+"orders/partitions", "3")
	api.want(http.StatusNoContent, "POST", v2+"orders/partitions", `{"partitions": 4}`, nil)
	var parts struct{ Partitions int }
	api.want(http.StatusOK, "GET", v2+"orders/partitions", "", &parts)
	if parts.Partitions != 4 {
		t.Fatalf("orders has %d partitions after raising them to 4", parts.Partitions)
	}
	api.want(http.StatusNoContent, "PUT", v2+"events", "", nil)
	var topics []struct {
		Topic      string
		Partitions int
	}
	api.want(http.StatusOK, "GET", "/admin/v2/persistent/public/default", "", &topics)
	if fmt.Sprint(topics) != "[{public/default/events 0} {public/default/orders 4}]" {
		t.Fatalf("topics listed: %v", topics)
	}
	var pstats struct {
		Topic      string
		Partitions []client.TopicStats
	}
	api.want(http.StatusOK, "GET", v2+"orders/stats", "", &pstats)
	if pstats.Topic != "public/default/orders" || len(pstats.Partitions) != 4 || pstats.Partitions[3].Topic != "public/default/orders-partition-3" {
		t.Fatalf("stats of the partitioned topic: %+v", pstats)
	}
	var partitioned []string
	api.want(http.StatusOK, "GET", "/admin/v2/persistent/public/default/partitioned", "", &partitioned)
	if fmt.Sprint(partitioned) != "[public/default/orders]" {
		t.Fatalf("partitioned topics listed: %v", partitioned)
	}

	// A subscription made over HTTP keeps what the SDK then produces.
	api.want(http.StatusNoContent, "PUT", v2+"events/subscription/audit?position=earliest", "", nil)
	api.wantError(http.StatusConflict, "SUBSCRIPTION_EXISTS", "PUT", v2+"events/subscription/audit", "")
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	p, err := c.NewProducer(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	var ids []client.MessageID
	for i := range n {
		id, err := p.Send(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "event-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var peeked []client.JSONMessage
	api.want(http.StatusOK, "GET", v2+"events/subscription/audit/peek?count=3", "", &peeked)
	if len(peeked) != 3 || *peeked[0].Payload != "event-0" || *peeked[2].Payload != "event-2" || peeked[2].ID != ids[2].String() {
		t.Fatalf("peeked %+v", peeked)
	}
	var tenth client.JSONMessage
	api.want(http.StatusOK, "GET", v2+"events/subscription/audit/position/10", "", &tenth)
	if *tenth.Payload != "event-9" {
		t.Fatalf("the 10th message of the backlog is %q", *tenth.Payload)
	}
	api.wantError(http.StatusNotFound, "ENTRY_NOT_FOUND", "GET", v2+"events/subscription/audit/position/11", "")
	backlog := func() uint64 {
		t.Helper()
		var st client.TopicStats
		api.want(http.StatusOK, "GET", v2+"events/stats", "", &st)
		if len(st.Subscriptions) != 1 || st.Subscriptions[0].Name != "audit" {
			t.Fatalf("stats subscriptions: %+v", st.Subscriptions)
		}
		return st.Subscriptions[0].Backlog
	}
	if backlog() == 0 {
		t.Fatal("the subscription has no backlog after 10 messages")
	}
	api.want(http.StatusOK, "POST", v2+"events/subscription/audit/skip_all", "", nil)
	if b := backlog(); b != 0 {
		t.Fatalf("backlog %d after skip_all", b)
	}
	var dry []client.ResetResult
	api.want(http.StatusOK, "POST", v2+"events/subscription/audit/resetcursor", `{"earliest": true, "dry_run": true}`, &dry)
	if len(dry) != 1 || dry[0].Executed || dry[0].Position != ids[0] || backlog() != 0 {
		t.Fatalf("a dry-run reset answered %+v and left backlog %d", dry, backlog())
	}
	api.want(http.StatusOK, "POST", v2+fmt.Sprintf("events/subscription/audit/resetcursor/%d", time.Now().Add(-time.Hour).UnixMilli()), "", nil)
	cons, err := c.Subscribe(ctx, "events", "audit")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != ids[i] {
			t.Fatalf("after the reset by time, message %d is %v, want %v", i, m.ID, ids[i])
		}
	}
	cons.Close()

	// A namespace policy update sets the fields given, no other.
	var before, after client.NamespacePolicy
	api.want(http.StatusOK, "GET", "/admin/v2/namespaces/public/default/policies", "", &before)
	api.want(http.StatusNoContent, "POST", "/admin/v2/namespaces/public/default/policies", `{"ttl": 3600000000000}`, nil)
	api.want(http.StatusOK, "GET", "/admin/v2/namespaces/public/default/policies", "", &after)
	before.TTL = time.Hour
	if after != before {
		t.Fatalf("policy after setting the TTL alone: %+v, want %+v", after, before)
	}
	api.wantError(http.StatusBadRequest, "INVALID_ARGUMENT", "POST", "/admin/v2/namespaces/public/default/policies", `{"ttl": "an hour"}`)
	api.wantError(http.StatusBadRequest, "INVALID_ARGUMENT", "POST", "/admin/v2/namespaces/public/default/policies", `{"ensemble": -1}`)

	// A topic policy set over HTTP is what the owner enforces.
	api.want(http.StatusNoContent, "POST", v2+"events/policies", `{"max_message_bytes": 100}`, nil)
	waitFor(t, 30*time.Second, "the topic's message size limit", func() bool {
		_, err := p.Send(ctx, &client.ProducerMessage{Payload: bytes.Repeat([]byte("x"), 200)})
		return errors.Is(err, client.ErrMessageTooLarge)
	})
	api.want(http.StatusNoContent, "DELETE", v2+"events/policies", "", nil)

	// Terminated over HTTP: the last message id comes back, sends fail.
	var term []struct {
		LastMessageID client.MessageID `json:"last_message_id"`
	}
	api.want(http.StatusOK, "POST", v2+"events/terminate", "", &term)
	if len(term) != 1 || term[0].LastMessageID != ids[n-1] {
		t.Fatalf("terminate answered %+v, want the last message %v", term, ids[n-1])
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("late")}); !errors.Is(err, client.ErrTopicTerminated) {
		t.Fatalf("a send after terminate: %v, want ErrTopicTerminated", err)
	}

	// Bad input: typed errors with their statuses, and nothing changed.
	api.wantError(http.StatusBadRequest, "INVALID_TOPIC_NAME", "PUT", "/admin/v2/persistent/public/default/bad%20name", "")
	api.wantError(http.StatusNotFound, "TOPIC_NOT_FOUND", "GET", v2+"missing/partitions", "")
	api.wantError(http.StatusBadRequest, "INVALID_ARGUMENT", "POST", v2+"orders/partitions", "-2")
	api.wantError(http.StatusBadRequest, "INVALID_ARGUMENT", "POST", v2+"events/subscription/audit/resetcursor", `{"unknown": 1}`)
	api.wantError(http.StatusBadRequest, "INVALID_ARGUMENT", "POST", v2+"events/subscription/audit/resetcursor/yesterday", "")
	api.wantError(http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "POST", "/admin/v2/namespaces/public/default/policies",
		`{"ttl": 1, "x": "`+strings.Repeat("x", 2<<20)+`"}`)
	api.want(http.StatusOK, "GET", v2+"orders/partitions", "", &parts)
	if parts.Partitions != 4 {
		t.Fatalf("orders has %d partitions after refused requests", parts.Partitions)
	}

	// The console shows the topic, its subscription and the bookie (with
	// room on its disk).
	status, page := api.call("GET", "/console", "")
	if status != http.StatusOK || !bytes.Contains(page, []byte("public/default/events")) || !bytes.Contains(page, []byte("audit")) ||
		!bytes.Contains(page, []byte("public/default/orders-partition-3")) || !bytes.Contains(page, []byte(s.bookie)) ||
		!bytes.Contains(page, []byte("writable")) {
		t.Fatalf("console: status %d\n%s", status, page)
	}

	api.want(http.StatusNoContent, "DELETE", v2+"orders?force=true", "", nil)
	api.wantError(http.StatusNotFound, "TOPIC_NOT_FOUND", "GET", v2+"orders/partitions", "")
}

// TestRESTAdminAPICallsAsTheRequestsRole: with static tokens and
// --authorization, a REST call without a token, or with a malformed
// Authorization header, is 401; a role without a grant is refused (403)
// what a superuser's token is allowed; a namespace grant made over HTTP
// lets that role manage subscriptions there and nothing more; and the
// console needs a token too.
func TestRESTAdminAPICallsAsTheRequestsRole(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("admin admin-secret\napp app-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStandalone(t)
	s.extraArgs = []string{"--auth-token-file", tokens, "--authorization", "--superuser-roles", "admin"}
	s.start()
	anon := restCaller{t: t, web: http.DefaultClient, base: "http://" + s.http}
	admin, app := anon, anon
	admin.token, app.token = "admin-secret", "app-secret"
	const v2 = "/admin/v2/persistent/acme/billing/"

	anon.wantError(http.StatusUnauthorized, "UNAUTHENTICATED", "GET", "/admin/v2/tenants", "")
	wrong := anon
	wrong.token = "not-a-token"
	wrong.wantError(http.StatusUnauthorized, "UNAUTHENTICATED", "GET", "/admin/v2/tenants", "")
	req, _ := http.NewRequest("GET", anon.base+"/admin/v2/tenants", nil)
	req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("basic authorization: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if status, _ := anon.call("GET", "/console", ""); status != http.StatusUnauthorized {
		t.Fatalf("console without a token: status %d", status)
	}

	app.wantError(http.StatusForbidden, "UNAUTHORIZED", "PUT", v2+"invoices", "")
	admin.want(http.StatusNoContent, "PUT", v2+"invoices", "", nil)
	app.wantError(http.StatusForbidden, "UNAUTHORIZED", "PUT", v2+"invoices/subscription/mailer", "")
	admin.want(http.StatusNoContent, "POST", "/admin/v2/namespaces/acme/billing/permissions/app", `["consume"]`, nil)
	var grants map[string][]string
	admin.want(http.StatusOK, "GET", "/admin/v2/namespaces/acme/billing/permissions", "", &grants)
	if fmt.Sprint(grants) != "map[app:[consume]]" {
		t.Fatalf("grants: %v", grants)
	}
	app.want(http.StatusNoContent, "PUT", v2+"invoices/subscription/mailer", "", nil)
	app.wantError(http.StatusForbidden, "UNAUTHORIZED", "DELETE", v2+"invoices?force=true", "")
	app.wantError(http.StatusForbidden, "UNAUTHORIZED", "PUT", "/admin/v2/persistent/acme/other/invoices/subscription/mailer", "")
	admin.want(http.StatusNoContent, "DELETE", "/admin/v2/namespaces/acme/billing/permissions/app", "", nil)
	app.wantError(http.StatusForbidden, "UNAUTHORIZED", "DELETE", v2+"invoices/subscription/mailer", "")
	if status, page := admin.call("GET", "/console", ""); status != http.StatusOK || !bytes.Contains(page, []byte("acme/billing/invoices")) {
		t.Fatalf("console with the superuser's token: status %d\n%s", status, page)
	}
}

// TestRESTAdminAPIServesHTTPSAndKeepsClientCertificatesRequired: with
// --http-tls beside --tls-client-ca-file, the HTTP port serves TLS with the
// node's certificate and asks for a client certificate as the client port
// does, and the API reaches the node over mutual TLS; without --http-tls
// the API stays off rather than open a way round the client certificates.
func TestRESTAdminAPIServesHTTPSAndKeepsClientCertificatesRequired(t *testing.T) {
	pki := newTestPKI(t)
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.path("ca.pem"))
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("reading the CA: %v", err)
	}
	clientCert, err := tls.LoadX509KeyPair(pki.path("client.pem"), pki.path("client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{clientCert}}}}
	tlsArgs := []string{"--tls-cert-file", pki.path("server.pem"), "--tls-key-file", pki.path("server-key.pem"),
		"--tls-client-ca-file", pki.path("ca.pem"),
		"--node-client-ca-file", pki.path("ca.pem"), "--node-client-cert-file", pki.path("client.pem"), "--node-client-key-file", pki.path("client-key.pem")}

	s := newStandalone(t)
	s.extraArgs = append(tlsArgs, "--http-tls")
	s.web = web
	s.start()
	api := restCaller{t: t, web: web, base: "https://" + s.http}
	api.want(http.StatusNoContent, "PUT", "/admin/v2/persistent/public/default/secure", "", nil)
	var st client.TopicStats
	api.want(http.StatusOK, "GET", "/admin/v2/persistent/public/default/secure/stats", "", &st)
	var cluster struct{ Nodes []client.ClusterNode }
	api.want(http.StatusOK, "GET", "/admin/v2/cluster", "", &cluster)
	if len(cluster.Nodes) != 1 || cluster.Nodes[0].OwnedTopics != 1 || st.Owner != cluster.Nodes[0].GRPCAddr {
		t.Fatalf("over HTTPS: cluster %+v, stats %+v", cluster, st)
	}
	noCert := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if resp, err := noCert.Get(api.base + "/admin/v2/cluster"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got status %d", resp.StatusCode)
	}
	s.kill()

	plain := newStandalone(t)
	plain.extraArgs = tlsArgs
	plain.start()
	resp, err := http.Get("http://" + plain.http + "/admin/v2/cluster")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the admin API on a plain HTTP port of a node requiring client certificates: status %d, want 404 (off)", resp.StatusCode)
	}
}

// TestRESTAdminAPIOfAnyNodeReachesEachTopicsOwner: on a real cluster (etcd,
// three bookies, two serving nodes as processes), the stats of every topic,
// asked over HTTP at either node, come from the topic's owner, whichever
// node that is, and a subscription created at one node is seen at the
// other.
func TestRESTAdminAPIOfAnyNodeReachesEachTopicsOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 3*time.Minute)
	_, _, c := startProcessCluster(t, ctx, chaos.ClusterConfig{})
	const topics = 16
	name := func(i int) string { return fmt.Sprintf("spread-%02d", i) }
	for i := range topics {
		p, err := c.NewProducer(ctx, name(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	nodes, _, err := c.Admin().Cluster(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("cluster: %v, %v", nodes, err)
	}
	owners := map[string]int{}
	for _, n := range nodes {
		api := restCaller{t: t, web: http.DefaultClient, base: "http://" + n.HTTPAddr}
		for i := range topics {
			var st client.TopicStats
			api.want(http.StatusOK, "GET", "/admin/v2/persistent/public/default/"+name(i)+"/stats", "", &st)
			if st.MessagesIn != 1 {
				t.Fatalf("stats of %s asked at %s: %d messages in, want 1 (from the owner %s)", name(i), n.ID, st.MessagesIn, st.Owner)
			}
			owners[st.Owner]++
		}
	}
	if len(owners) != 2 {
		t.Fatalf("owners seen: %v; the test needs topics on both nodes", owners)
	}
	first := restCaller{t: t, web: http.DefaultClient, base: "http://" + nodes[0].HTTPAddr}
	second := first
	second.base = "http://" + nodes[1].HTTPAddr
	for i := range topics {
		first.want(http.StatusNoContent, "PUT", "/admin/v2/persistent/public/default/"+name(i)+"/subscription/seen", "", nil)
		var subs []string
		second.want(http.StatusOK, "GET", "/admin/v2/persistent/public/default/"+name(i)+"/subscriptions", "", &subs)
		if fmt.Sprint(subs) != "[seen]" {
			t.Fatalf("subscriptions of %s at the second node: %v", name(i), subs)
		}
	}
}

// TestTheNodesHTTPAnswersAWrongMethod405AndAnUnknownPath404: on a real
// standalone, a method an admin path does not take is 405 with the methods
// it does (a catch-all for the node's own paths used to answer it 404),
// an unknown path is 404, and the node's own paths still answer.
func TestTheNodesHTTPAnswersAWrongMethod405AndAnUnknownPath404(t *testing.T) {
	s := newStandalone(t)
	s.start()
	do := func(method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+s.http+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := do(http.MethodDelete, "/admin/v2/cluster"); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") == "" {
		t.Errorf("DELETE /admin/v2/cluster: %d, Allow %q; want 405 with Allow", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := do(http.MethodGet, "/nosuch"); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nosuch: %d, want 404", r.StatusCode)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := do(http.MethodGet, path); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, r.StatusCode)
		}
	}
}
