package wal

// appender is engine.Appender, restated here so that this package's tests
// do not depend on the engine building: *WAL must satisfy it.
type appender interface {
	Append(k StreamKey, e *Entry, durable bool, done func(baseOffset int64, err error))
}

var _ appender = (*WAL)(nil)
