package client

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// JSONTimeFormat is how JSON lines write times: RFC 3339 in UTC with nine
// fractional digits.
const JSONTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// JSONMessage is the JSON-lines form of a received message, shared by
// `strata consume --output jsonl` and `strata replay`:
//
//	{"id":"7:12:0","topic":"public/default/t","key":"k","publish_time":"2026-01-02T03:04:05.123456789Z",
//	 "properties":{},"payload":"hello"}
//
// The payload is a string when it is valid UTF-8, else payload_base64 holds
// its standard base64 encoding (exactly one of the two is present).
type JSONMessage struct {
	ID              string `json:"id"`
	Topic           string `json:"topic"`
	Key             string `json:"key"`
	PublishTime     string `json:"publish_time"`
	EventTime       string `json:"event_time,omitempty"`
	Producer        string `json:"producer,omitempty"`
	SequenceID      uint64 `json:"sequence_id"`
	RedeliveryCount uint32 `json:"redelivery_count,omitempty"`
	SchemaVersion   *int64 `json:"schema_version,omitempty"`
	// Encrypted: the payload is still encrypted (Message.Encrypted).
	Encrypted     bool              `json:"encrypted,omitempty"`
	Properties    map[string]string `json:"properties"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 *string           `json:"payload_base64,omitempty"`
}

// NewJSONMessage returns the JSON-lines form of m.
func NewJSONMessage(m *Message) JSONMessage {
	j := JSONMessage{
		ID: m.ID.String(), Topic: m.Topic, Key: m.Key,
		PublishTime: m.PublishTime.UTC().Format(JSONTimeFormat),
		Producer:    m.ProducerName, SequenceID: m.SequenceID, RedeliveryCount: m.RedeliveryCount,
		Properties: m.Properties, Encrypted: m.Encrypted,
	}
	if j.Properties == nil {
		j.Properties = map[string]string{}
	}
	if m.SchemaVersion >= 0 {
		v := m.SchemaVersion
		j.SchemaVersion = &v
	}
	if !m.EventTime.IsZero() {
		j.EventTime = m.EventTime.UTC().Format(JSONTimeFormat)
	}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		j.Payload = &s
	} else {
		s := base64.StdEncoding.EncodeToString(m.Payload)
		j.PayloadBase64 = &s
	}
	return j
}

// Bytes returns the payload: the string, or the decoded base64.
func (j JSONMessage) Bytes() ([]byte, error) {
	if j.PayloadBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*j.PayloadBase64)
		if err != nil {
			return nil, invalidArg("payload_base64: %v", err)
		}
		return b, nil
	}
	if j.Payload != nil {
		return []byte(*j.Payload), nil
	}
	return nil, nil
}

// JSONLWriter writes messages as JSON lines, one object per line.
type JSONLWriter struct{ enc *json.Encoder }

// NewJSONLWriter returns a writer of JSON lines to w.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONLWriter{enc: enc}
}

// Write writes m as one line.
func (w *JSONLWriter) Write(m *Message) error { return w.enc.Encode(NewJSONMessage(m)) }
