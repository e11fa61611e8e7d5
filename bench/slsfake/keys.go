package slsfake

// accessKey is a configured AccessKey with its policy compiled from the
// config (Projects, KafkaUpload and Policy).
type accessKey struct {
	cfg    *AccessKeyConfig
	policy []Statement
}
