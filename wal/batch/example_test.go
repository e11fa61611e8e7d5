package batch_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The ack path: validate a partition's Records bytes and map a failure to
// the partition's error code.
func ExampleValidate() {
	data, err := os.ReadFile("testdata/realworld/kgo-produce-v13-magic2-gzip.bin")
	if err != nil {
		panic(err)
	}
	info, err := batch.Validate(data, batch.ValidateOptions{ProduceVersion: 13})
	fmt.Println(info.Magic, info.Codec, info.Records, err)

	data[len(data)-1] ^= 1
	_, err = batch.Validate(data, batch.ValidateOptions{ProduceVersion: 13})
	var ke *kerr.Error
	if errors.As(err, &ke) {
		fmt.Println(ke.Code, ke.Message)
	}
	// Output:
	// 2 1 5 <nil>
	// 2 CORRUPT_MESSAGE
}

// Delivery: decode a stored batch into records.
func ExampleDecoder_Decode() {
	data, err := os.ReadFile("testdata/realworld/sarama-produce-v2-magic1-snappy.bin")
	if err != nil {
		panic(err)
	}
	var d batch.Decoder // one per delivery goroutine, reused
	err = d.Decode(1, data, batch.DecodeOptions{}, func(r *batch.Record) error {
		// r and its slices are only valid during the call: copy what you keep.
		fmt.Printf("%d %d %s\n", r.OffsetDelta, r.Timestamp, r.Key)
		return nil
	})
	fmt.Println(err)
	// Output:
	// 0 1700000000000 key-0
	// 1 1700000000010 key-1
	// 2 1700000000020 key-2
	// 3 1700000000030 key-3
	// 4 1700000000040 key-4
	// <nil>
}
