package segment

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/strata-mq/strata/internal/ids"
)

// Row is one message: one row of a segment.
type Row struct {
	Ledger     ids.LedgerID
	Entry      ids.EntryID
	BatchIndex int32
	// PublishTime is unix nanoseconds, assigned by the serving node.
	PublishTime int64
	// EventTime is unix nanoseconds set by the producer, 0 when unset
	// (stored as null).
	EventTime  int64
	Producer   string
	SequenceID uint64
	Key        string
	Properties map[string]string
	Payload    []byte
}

// Column positions in the schema.
const (
	colLedger = iota
	colEntry
	colBatchIndex
	colPublishTime
	colEventTime
	colProducer
	colSequenceID
	colKey
	colProperties
	colPayload
	numCols
)

var tsNanos = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}

// fields is the segment schema, version 1, in column order.
var fields = []arrow.Field{
	{Name: "ledger", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "entry", Type: arrow.PrimitiveTypes.Int64},
	{Name: "batch_index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "publish_time", Type: tsNanos},
	{Name: "event_time", Type: tsNanos, Nullable: true},
	{Name: "producer", Type: arrow.BinaryTypes.String},
	{Name: "sequence_id", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "properties", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
	{Name: "payload", Type: arrow.BinaryTypes.Binary},
}

// Schema returns the segment schema without file metadata.
func Schema() *arrow.Schema { return arrow.NewSchema(fields, nil) }

func schemaWithIndex(index string) *arrow.Schema {
	md := arrow.NewMetadata([]string{metaFormatKey, metaIndexKey}, []string{formatVersion, index})
	return arrow.NewSchema(fields, &md)
}

// Schema metadata keys.
const (
	metaFormatKey = "strata.format"
	metaIndexKey  = "strata.index"
	formatVersion = "1"
)
