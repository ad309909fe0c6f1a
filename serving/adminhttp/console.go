package adminhttp

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/strata-mq/strata/client"
)

//go:embed console.html
var consoleHTML string

var consoleTemplate = template.Must(template.New("console").Parse(consoleHTML))

// maxConsoleTopics bounds the topics (partitions one by one) whose stats one
// console page reads, so that a large cluster's page stays cheap.
const maxConsoleTopics = 200

// consolePage is what the console shows.
type consolePage struct {
	Now        string
	Err        string
	Cluster    clusterView
	Namespaces []consoleNamespace
}

type consoleNamespace struct {
	Name   string
	Err    string
	Topics []consoleTopic
	More   int
}

type consoleTopic struct {
	Name          string
	Err           string
	MessagesIn    uint64
	Storage       string
	Producers     int
	Subscriptions []consoleSubscription
}

type consoleSubscription struct {
	Name      string
	Type      string
	Consumers int
	Backlog   uint64
	Age       string
}

// console renders the web console: the cluster, the bookies, and each
// namespace's topics with their subscriptions' backlogs. It reads what the
// API answers, with the request's token, and shows what fails in place.
func (g *Gateway) console(w http.ResponseWriter, r *http.Request) {
	v, err := g.call(r, func(r *http.Request, a *client.Admin) (any, error) {
		return buildConsole(r, a)
	})
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := consoleTemplate.Execute(&buf, v); err != nil {
		g.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes()) //nolint:errcheck // the browser went away
}

// buildConsole gathers the page. It fails when the cluster cannot be
// listed (the caller is not a superuser, or the node cannot answer); a part
// failing after that shows its error and the rest still shows.
func buildConsole(r *http.Request, a *client.Admin) (consolePage, error) {
	ctx := r.Context()
	now := time.Now()
	p := consolePage{Now: now.UTC().Format("2006-01-02 15:04:05 UTC")}
	nodes, bookies, err := a.Cluster(ctx)
	if err != nil {
		return p, err
	}
	// The registered bookies only: their states and ledger counts
	// (Admin.Bookies) read every ledger's metadata, too much for a page
	// that refreshes itself.
	p.Cluster = clusterView{Nodes: nodes, Bookies: bookies}
	nss, err := a.ListNamespaces(ctx, "")
	if err != nil {
		p.Err = err.Error()
		return p, nil
	}
	budget := maxConsoleTopics
	for _, ns := range nss {
		p.Namespaces = append(p.Namespaces, consoleNamespaceOf(r, a, ns, &budget, now))
	}
	return p, nil
}

// consoleNamespaceOf reads ns's topics' stats, while budget lasts.
func consoleNamespaceOf(r *http.Request, a *client.Admin, ns string, budget *int, now time.Time) consoleNamespace {
	ctx := r.Context()
	out := consoleNamespace{Name: ns}
	ts, err := a.ListTopics(ctx, ns)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	for _, t := range ts {
		if *budget == 0 {
			out.More += max(1, t.Partitions)
			continue
		}
		names := []string{t.Topic}
		if t.Partitions > 0 {
			if names, err = a.PartitionNames(ctx, t.Topic); err != nil {
				out.Topics = append(out.Topics, consoleTopic{Name: t.Topic, Err: err.Error()})
				continue
			}
		}
		for _, name := range names {
			if *budget == 0 {
				out.More++
				continue
			}
			*budget--
			out.Topics = append(out.Topics, consoleTopicOf(r, a, name, now))
		}
	}
	return out
}

func consoleTopicOf(r *http.Request, a *client.Admin, name string, now time.Time) consoleTopic {
	st, err := a.TopicStats(r.Context(), name)
	if err != nil {
		return consoleTopic{Name: name, Err: err.Error()}
	}
	t := consoleTopic{Name: name, MessagesIn: st.MessagesIn, Storage: byteSize(st.StorageBytes), Producers: st.Producers}
	for _, s := range st.Subscriptions {
		age := "-"
		if !s.OldestUnacked.IsZero() {
			age = now.Sub(s.OldestUnacked).Truncate(time.Second).String()
		}
		t.Subscriptions = append(t.Subscriptions, consoleSubscription{Name: s.Name, Type: s.Type, Consumers: s.Consumers, Backlog: s.Backlog, Age: age})
	}
	return t
}

// byteSize formats n bytes for people.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
