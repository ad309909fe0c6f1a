package client

// ProducerInterceptor sees each message a producer sends and how its send
// ended, as Pulsar's ProducerInterceptor and Kafka's: to carry a trace
// context in the properties, or to count. Its methods run on the
// producer's goroutines and must not block.
type ProducerInterceptor interface {
	// BeforeSend is called by Send and SendAsync before the message is
	// routed and queued; it may change msg (its properties, its key).
	BeforeSend(msg *ProducerMessage)
	// OnSendAcknowledgement is called once per message, with its id or
	// the send's error, before the send's callback.
	OnSendAcknowledgement(msg *ProducerMessage, id MessageID, err error)
}

// ProducerInterceptors adds interceptors, called in the order given.
func ProducerInterceptors(is ...ProducerInterceptor) ProducerOption {
	return func(c *producerConfig) { c.intercept = append(c.intercept, is...) }
}

// ConsumerInterceptor sees each message a consumer hands out and each
// acknowledgement, as Pulsar's ConsumerInterceptor and Kafka's. Its
// methods run on the calling goroutine and must not block.
type ConsumerInterceptor interface {
	// BeforeConsume is called before Receive (or BatchReceive, or the
	// Messages iterator) returns msg; it may change it.
	BeforeConsume(msg *Message)
	// OnAcknowledge is called after Ack, AckID or AckCumulative, with its
	// outcome.
	OnAcknowledge(id MessageID, err error)
	// OnNegativeAcknowledge is called after Nack or NackID.
	OnNegativeAcknowledge(id MessageID, err error)
}

// ConsumerInterceptors adds interceptors, called in the order given.
func ConsumerInterceptors(is ...ConsumerInterceptor) ConsumerOption {
	return func(c *consumerConfig) { c.intercept = append(c.intercept, is...) }
}

// interceptSend runs the producer's interceptors before msg is sent and
// answers the callback that runs them on its outcome, then calls cb.
func (p *Producer) interceptSend(msg *ProducerMessage, cb func(MessageID, *ProducerMessage, error)) func(MessageID, *ProducerMessage, error) {
	is := p.cfg.intercept
	if len(is) == 0 {
		return cb
	}
	for _, i := range is {
		i.BeforeSend(msg)
	}
	return func(id MessageID, m *ProducerMessage, err error) {
		for _, i := range is {
			i.OnSendAcknowledgement(m, id, err)
		}
		if cb != nil {
			cb(id, m, err)
		}
	}
}

func (c *Consumer) interceptors() []ConsumerInterceptor { return c.opts.redelivery.intercept }

func (c *Consumer) beforeConsume(m *Message) {
	for _, i := range c.interceptors() {
		i.BeforeConsume(m)
	}
}

func (c *Consumer) onAck(id MessageID, err error) error {
	for _, i := range c.interceptors() {
		i.OnAcknowledge(id, err)
	}
	return err
}

func (c *Consumer) onNack(id MessageID, err error) error {
	for _, i := range c.interceptors() {
		i.OnNegativeAcknowledge(id, err)
	}
	return err
}
