package batchtest

// Where the fields whose values kmsg leaves to the caller sit. Both framings
// open with an int64 offset and an int32 length of the rest; the magic byte
// at magicAt tells them apart.
const (
	lengthAt    = 8  // int32: bytes after logOverhead
	logOverhead = 12 // offset and length

	// MessageSet v0/v1: a CRC32 (IEEE) of everything after it.
	messageCRCAt    = 12
	messageCRCFrom  = 16
	messageV0MinLen = 26 // the smallest v0 message, null key and value

	magicAt = 16

	// RecordBatch v2: a CRC32C of everything after it.
	batchCRCAt     = 17
	batchCRCFrom   = 21
	batchHeaderLen = 61
)
