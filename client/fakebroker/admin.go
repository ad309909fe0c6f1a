package fakebroker

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// CreateTopic creates a topic.
func (b *Broker) CreateTopic(_ context.Context, req *servingpb.CreateTopicRequest) (*servingpb.CreateTopicResponse, error) {
	return &servingpb.CreateTopicResponse{}, b.cl.CreateTopic(req.GetTopic(), int(req.GetPartitions()))
}

// DeleteTopic deletes a topic and its partitions.
func (b *Broker) DeleteTopic(_ context.Context, req *servingpb.DeleteTopicRequest) (*servingpb.DeleteTopicResponse, error) {
	c := b.cl
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.meta[req.GetTopic()]
	if !ok {
		return nil, errcode.New(errcode.TopicNotFound, "topic %s not found", req.GetTopic())
	}
	delete(c.meta, req.GetTopic())
	delete(c.topics, req.GetTopic())
	tn, _ := topic.Parse(req.GetTopic())
	for i := range n {
		delete(c.topics, tn.Partition(i).String())
	}
	return &servingpb.DeleteTopicResponse{}, nil
}

// ListTopics lists created topics.
func (b *Broker) ListTopics(_ context.Context, req *servingpb.ListTopicsRequest) (*servingpb.ListTopicsResponse, error) {
	return &servingpb.ListTopicsResponse{Topics: b.cl.listTopics(req.GetNamespace())}, nil
}

// GetTopic describes a created topic.
func (b *Broker) GetTopic(_ context.Context, req *servingpb.GetTopicRequest) (*servingpb.GetTopicResponse, error) {
	c := b.cl
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.meta[req.GetTopic()]
	if !ok {
		return nil, errcode.New(errcode.TopicNotFound, "topic %s not found", req.GetTopic())
	}
	return &servingpb.GetTopicResponse{Topic: &servingpb.TopicInfo{Topic: req.GetTopic(), Partitions: uint32(n)}}, nil
}

// TopicStats answers message counts (owner only).
func (b *Broker) TopicStats(_ context.Context, req *servingpb.TopicStatsRequest) (*servingpb.TopicStatsResponse, error) {
	if err := b.checkOwner(req.GetTopic()); err != nil {
		return nil, err
	}
	c := b.cl
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.topicLocked(req.GetTopic())
	if err != nil {
		return nil, err
	}
	resp := &servingpb.TopicStatsResponse{Topic: req.GetTopic(), Owner: b.Addr, MessagesIn: uint64(len(t.msgs)), Producers: uint32(len(t.producers))}
	for name, s := range t.subs {
		resp.Subscriptions = append(resp.Subscriptions, &servingpb.SubscriptionStats{Name: name, Type: s.typ, Backlog: uint64(len(t.msgs) - len(s.acked))})
	}
	return resp, nil
}

// SetNamespacePolicy stores a policy.
func (b *Broker) SetNamespacePolicy(_ context.Context, req *servingpb.SetNamespacePolicyRequest) (*servingpb.SetNamespacePolicyResponse, error) {
	if _, _, err := topic.ParseNamespace(req.GetNamespace()); err != nil {
		return nil, err
	}
	b.cl.mu.Lock()
	b.cl.policies[req.GetNamespace()] = proto.CloneOf(req.GetPolicy())
	b.cl.mu.Unlock()
	return &servingpb.SetNamespacePolicyResponse{}, nil
}

// GetNamespacePolicy returns a stored policy.
func (b *Broker) GetNamespacePolicy(_ context.Context, req *servingpb.GetNamespacePolicyRequest) (*servingpb.GetNamespacePolicyResponse, error) {
	b.cl.mu.Lock()
	defer b.cl.mu.Unlock()
	p, ok := b.cl.policies[req.GetNamespace()]
	if !ok {
		return nil, errcode.New(errcode.NamespaceNotFound, "namespace %s not found", req.GetNamespace())
	}
	return &servingpb.GetNamespacePolicyResponse{Policy: proto.CloneOf(p)}, nil
}

// ResetCursor resolves (and with execute applies) a cursor position.
func (b *Broker) ResetCursor(_ context.Context, req *servingpb.ResetCursorRequest) (*servingpb.ResetCursorResponse, error) {
	if err := b.checkOwner(req.GetTopic()); err != nil {
		return nil, err
	}
	c := b.cl
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.topicLocked(req.GetTopic())
	if err != nil {
		return nil, err
	}
	s := t.subs[req.GetSubscription()]
	if s == nil {
		return nil, errcode.New(errcode.SubscriptionNotFound, "subscription %s not found", req.GetSubscription())
	}
	var i int
	switch to := req.GetTo().(type) {
	case *servingpb.ResetCursorRequest_MessageId:
		i = indexAtLocked(t, to.MessageId)
	case *servingpb.ResetCursorRequest_TimeUnixNano:
		i = indexAtTimeLocked(t, to.TimeUnixNano)
	default:
		return nil, errcode.New(errcode.InvalidArgument, "no target")
	}
	if req.GetExecute() {
		s.acked = map[int]bool{}
		for j := range i {
			s.acked[j] = true
		}
	}
	if i >= len(t.msgs) {
		return &servingpb.ResetCursorResponse{EndOfTopic: true}, nil
	}
	return &servingpb.ResetCursorResponse{Position: t.msgs[i].GetId()}, nil
}

// DeleteSubscription deletes a subscription.
func (b *Broker) DeleteSubscription(_ context.Context, req *servingpb.DeleteSubscriptionRequest) (*servingpb.DeleteSubscriptionResponse, error) {
	c := b.cl
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.topicLocked(req.GetTopic())
	if err != nil {
		return nil, err
	}
	if t.subs[req.GetSubscription()] == nil {
		return nil, errcode.New(errcode.SubscriptionNotFound, "subscription %s not found", req.GetSubscription())
	}
	delete(t.subs, req.GetSubscription())
	return &servingpb.DeleteSubscriptionResponse{}, nil
}
