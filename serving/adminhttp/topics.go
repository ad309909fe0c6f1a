package adminhttp

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// topicView is one line of a topic listing.
type topicView struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"` // 0: not partitioned
}

// listTopics answers a namespace's topics, or only its partitioned ones
// (their names, as Pulsar's .../partitioned).
func listTopics(partitionedOnly bool) handler {
	return func(r *http.Request, a *client.Admin) (any, error) {
		ts, err := a.ListTopics(r.Context(), namespaceName(r))
		if err != nil {
			return nil, err
		}
		if partitionedOnly {
			names := []string{}
			for _, t := range ts {
				if t.Partitions > 0 {
					names = append(names, t.Topic)
				}
			}
			return names, nil
		}
		out := make([]topicView, 0, len(ts))
		for _, t := range ts {
			out = append(out, topicView{Topic: t.Topic, Partitions: t.Partitions})
		}
		return out, nil
	}
}

func createTopic(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.CreateTopic(r.Context(), topicName(r), 0)
}

func deleteTopic(r *http.Request, a *client.Admin) (any, error) {
	force, err := boolQuery(r, "force")
	if err != nil {
		return nil, err
	}
	return nil, a.DeleteTopic(r.Context(), topicName(r), force)
}

// partitionsView is a topic's partition count.
type partitionsView struct {
	Partitions int `json:"partitions"`
}

func getPartitions(r *http.Request, a *client.Admin) (any, error) {
	t, err := a.GetTopic(r.Context(), topicName(r))
	return partitionsView{Partitions: t.Partitions}, err
}

func createPartitioned(r *http.Request, a *client.Admin) (any, error) {
	n, err := decodePartitions(r)
	if err != nil {
		return nil, err
	}
	return nil, a.CreateTopic(r.Context(), topicName(r), n)
}

func addPartitions(r *http.Request, a *client.Admin) (any, error) {
	n, err := decodePartitions(r)
	if err != nil {
		return nil, err
	}
	return nil, a.AddPartitions(r.Context(), topicName(r), n)
}

// decodePartitions reads a partition count body: N, as Pulsar's, or
// {"partitions": N}.
func decodePartitions(r *http.Request) (int, error) {
	var raw any
	if err := decodeBody(r, &raw); err != nil {
		return 0, err
	}
	if m, ok := raw.(map[string]any); ok && len(m) == 1 {
		raw = m["partitions"]
	}
	f, ok := raw.(float64)
	if !ok || f != float64(int(f)) || f < 1 {
		return 0, invalid("the body must be a positive partition count, N or {\"partitions\": N}")
	}
	return int(f), nil
}

// partitionedStats is the stats of a partitioned topic, partition by
// partition.
type partitionedStats struct {
	Topic      string               `json:"topic"`
	Partitions []*client.TopicStats `json:"partitions"`
}

// topicStats answers a topic's stats; for a partitioned topic, each
// partition's.
func topicStats(r *http.Request, a *client.Admin) (any, error) {
	name := topicName(r)
	parts, err := a.PartitionNames(r.Context(), name)
	if err != nil {
		return nil, err
	}
	all, err := statsOf(r.Context(), a, parts)
	if err != nil {
		return nil, err
	}
	if len(parts) == 1 && parts[0] == name { // served under its own name: not partitioned
		return all[0], nil
	}
	return partitionedStats{Topic: name, Partitions: all}, nil
}

// statsOf answers the stats of each of names.
func statsOf(ctx context.Context, a *client.Admin, names []string) ([]*client.TopicStats, error) {
	out := make([]*client.TopicStats, 0, len(names))
	for _, n := range names {
		st, err := a.TopicStats(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// listSubscriptions answers the names of a topic's subscriptions (of its
// first partition: every partition has the same).
func listSubscriptions(r *http.Request, a *client.Admin) (any, error) {
	parts, err := a.PartitionNames(r.Context(), topicName(r))
	if err != nil {
		return nil, err
	}
	st, err := a.TopicStats(r.Context(), parts[0])
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, s := range st.Subscriptions {
		names = append(names, s.Name)
	}
	return names, nil
}

// terminated is a partition's last message after a terminate.
type terminated struct {
	Partition     int              `json:"partition"`
	LastMessageID client.MessageID `json:"last_message_id"`
}

func terminateTopic(r *http.Request, a *client.Admin) (any, error) {
	ids, err := a.TerminateTopic(r.Context(), topicName(r))
	out := make([]terminated, 0, len(ids))
	for i, id := range ids {
		out = append(out, terminated{Partition: i, LastMessageID: id})
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func unloadTopic(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.UnloadTopic(r.Context(), topicName(r))
}

// compaction is a partition's compaction result.
type compaction struct {
	Partition int32             `json:"partition"`
	Horizon   *client.MessageID `json:"horizon"`
	Messages  uint64            `json:"messages"`
}

func compactTopic(r *http.Request, a *client.Admin) (any, error) {
	cs, err := a.CompactTopic(r.Context(), topicName(r))
	if err != nil {
		return nil, err
	}
	out := make([]compaction, 0, len(cs))
	for _, c := range cs {
		out = append(out, compaction{Partition: c.Partition, Horizon: c.Horizon, Messages: c.Messages})
	}
	return out, nil
}

// offloaded is a partition's offload result.
type offloaded struct {
	Topic   string `json:"topic"`
	Ledgers int    `json:"ledgers"`
}

func offloadTopic(r *http.Request, a *client.Admin) (any, error) {
	parts, err := a.PartitionNames(r.Context(), topicName(r))
	if err != nil {
		return nil, err
	}
	out := make([]offloaded, 0, len(parts))
	for _, p := range parts {
		n, err := a.TriggerOffload(r.Context(), p)
		if err != nil {
			return nil, err
		}
		out = append(out, offloaded{Topic: p, Ledgers: n})
	}
	return out, nil
}

// topicPolicyView is a topic's own policy and the one it runs with.
type topicPolicyView struct {
	Own       client.TopicPolicy     `json:"own"`
	Effective client.NamespacePolicy `json:"effective"`
}

func getTopicPolicy(r *http.Request, a *client.Admin) (any, error) {
	own, eff, err := a.GetTopicPolicy(r.Context(), topicName(r))
	return topicPolicyView{Own: own, Effective: eff}, err
}

// setTopicPolicy replaces the topic's own policy with the body (fields left
// out follow the namespace's).
func setTopicPolicy(r *http.Request, a *client.Admin) (any, error) {
	var p client.TopicPolicy
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	return nil, a.SetTopicPolicy(r.Context(), topicName(r), p)
}

func removeTopicPolicy(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.RemoveTopicPolicy(r.Context(), topicName(r))
}

func getTopicPermissions(r *http.Request, a *client.Admin) (any, error) {
	return a.TopicPermissions(r.Context(), topicName(r))
}

func grantTopicPermission(r *http.Request, a *client.Admin) (any, error) {
	actions, err := decodeActions(r)
	if err != nil {
		return nil, err
	}
	return nil, a.GrantTopicPermission(r.Context(), topicName(r), r.PathValue("role"), actions...)
}

func revokeTopicPermission(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.RevokeTopicPermission(r.Context(), topicName(r), r.PathValue("role"))
}

// createSubscription creates a subscription at ?position=latest (default)
// or earliest.
func createSubscription(r *http.Request, a *client.Admin) (any, error) {
	at := client.Latest
	switch p := r.URL.Query().Get("position"); strings.ToLower(p) {
	case "", "latest":
	case "earliest":
		at = client.Earliest
	default:
		return nil, invalid("position %q: want earliest or latest", p)
	}
	return nil, a.CreateSubscription(r.Context(), topicName(r), r.PathValue("subscription"), at)
}

func deleteSubscription(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.DeleteSubscription(r.Context(), topicName(r), r.PathValue("subscription"))
}

// skipAll acknowledges a subscription's whole backlog (Pulsar's
// clear-backlog).
func skipAll(r *http.Request, a *client.Admin) (any, error) {
	return a.ResetCursor(r.Context(), topicName(r), r.PathValue("subscription"), client.CursorTarget{Latest: true}, true)
}

// resetCursorToTime moves a subscription to the first message published at
// or after {timestamp}, milliseconds since the epoch, as Pulsar's.
func resetCursorToTime(r *http.Request, a *client.Admin) (any, error) {
	ms, err := strconv.ParseInt(r.PathValue("timestamp"), 10, 64)
	if err != nil {
		return nil, invalid("timestamp %q: want milliseconds since the epoch", r.PathValue("timestamp"))
	}
	to := client.CursorTarget{Time: time.UnixMilli(ms)}
	return a.ResetCursor(r.Context(), topicName(r), r.PathValue("subscription"), to, true)
}

// resetRequest is the body of POST .../resetcursor: one target.
type resetRequest struct {
	MessageID *client.MessageID `json:"message_id,omitempty"`
	// Partition is the message id's partition, for a partitioned topic.
	Partition int32     `json:"partition,omitempty"`
	Time      time.Time `json:"time,omitzero"`
	Earliest  bool      `json:"earliest,omitempty"`
	Latest    bool      `json:"latest,omitempty"`
	// DryRun answers where the cursor would go without moving it.
	DryRun bool `json:"dry_run,omitempty"`
}

func resetCursor(r *http.Request, a *client.Admin) (any, error) {
	var req resetRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	to := client.CursorTarget{ID: req.MessageID, Time: req.Time, Earliest: req.Earliest, Latest: req.Latest}
	if to.ID != nil {
		to.ID.Partition = req.Partition
	}
	return a.ResetCursor(r.Context(), topicName(r), r.PathValue("subscription"), to, !req.DryRun)
}

// maxPeek bounds the messages one peek answers.
const maxPeek = 1000

// peekAt answers the nth message (from 1) of a subscription's backlog, as
// Pulsar's peek at a position; 404 when the backlog is shorter.
func peekAt(r *http.Request, a *client.Admin) (any, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || n > maxPeek {
		return nil, invalid("position %q: want 1 to %d", r.PathValue("n"), maxPeek)
	}
	msgs, err := a.Peek(r.Context(), topicName(r), r.PathValue("subscription"), n)
	if err != nil {
		return nil, err
	}
	if len(msgs) < n {
		return nil, errNoMessage
	}
	return client.NewJSONMessage(msgs[n-1]), nil
}

// errNoMessage answers a peek past the end of the backlog.
var errNoMessage = errcode.New(errcode.EntryNotFound, "the backlog has fewer messages")

// peek answers the first ?count (default 1) messages of a subscription's
// backlog, as `strata subscriptions peek` prints them.
func peek(r *http.Request, a *client.Admin) (any, error) {
	n := 1
	if s := r.URL.Query().Get("count"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > maxPeek {
			return nil, invalid("count %q: want 1 to %d", s, maxPeek)
		}
	}
	msgs, err := a.Peek(r.Context(), topicName(r), r.PathValue("subscription"), n)
	if err != nil {
		return nil, err
	}
	out := make([]client.JSONMessage, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, client.NewJSONMessage(m))
	}
	return out, nil
}

// boolQuery reads a boolean query parameter (absent: false).
func boolQuery(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalid("%s=%q: want true or false", name, s)
	}
	return b, nil
}

func getSchema(r *http.Request, a *client.Admin) (any, error) {
	return a.GetSchema(r.Context(), topicName(r))
}

func getSchemaVersion(r *http.Request, a *client.Admin) (any, error) {
	v, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil {
		return nil, invalid("version %q: want a number", r.PathValue("version"))
	}
	return a.GetSchemaVersion(r.Context(), topicName(r), v)
}

func listSchemas(r *http.Request, a *client.Admin) (any, error) {
	all, err := a.ListSchemas(r.Context(), topicName(r))
	return nonNil(all), err
}

// schemaVersion is the answer of a call that adds a version.
type schemaVersion struct {
	Version uint64 `json:"version"`
}

func createSchema(r *http.Request, a *client.Admin) (any, error) {
	var s client.Schema
	if err := decodeBody(r, &s); err != nil {
		return nil, err
	}
	v, err := a.CreateSchema(r.Context(), topicName(r), s)
	return schemaVersion{Version: v}, err
}

func deleteSchema(r *http.Request, a *client.Admin) (any, error) {
	v, err := a.DeleteSchema(r.Context(), topicName(r))
	return schemaVersion{Version: v}, err
}

func testSchemaCompatibility(r *http.Request, a *client.Admin) (any, error) {
	var s client.Schema
	if err := decodeBody(r, &s); err != nil {
		return nil, err
	}
	return a.TestSchemaCompatibility(r.Context(), topicName(r), s)
}
