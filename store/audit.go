package store

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// AuditEvent is one admin API call, kept in the audit bucket. It never
// holds a secret: Object names what was acted on (an id or a name),
// Message says what happened.
type AuditEvent struct {
	// Seq is the event's key, assigned by AppendAudit; increasing in append
	// order. It is not part of the JSON record.
	Seq      uint64    `json:"-"`
	Time     time.Time `json:"time"`
	AdminKey string    `json:"admin_key"` // the admin key id ("" for a bootstrap)
	Method   string    `json:"method"`    // the gRPC method
	Object   string    `json:"object,omitempty"`
	Outcome  string    `json:"outcome"` // "ok" or a gRPC code name
	Message  string    `json:"message,omitempty"`
}

// AppendAudit stores e under the next sequence number and sets e.Seq.
// Audit events are not part of a Change.
func (tx *Tx) AppendAudit(e *AuditEvent) error {
	if e == nil {
		return fmt.Errorf("%w: audit event is nil", ErrInvalid)
	}
	b := tx.bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	data, err := encode(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), data); err != nil {
		return err
	}
	e.Seq = seq
	return nil
}

// ForEachAudit calls fn with every audit event whose Time is not before
// since, in append order.
func (tx *Tx) ForEachAudit(since time.Time, fn func(*AuditEvent) error) error {
	c := tx.bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seq, ok := readU64(k)
		if !ok {
			return fmt.Errorf("%w: audit key %x is not 8 bytes", ErrCorrupt, k)
		}
		e, err := decode[AuditEvent](v, "audit event", strconv.FormatUint(seq, 10))
		if err != nil {
			return err
		}
		if e.Time.Before(since) {
			continue
		}
		e.Seq = seq
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// PruneAudit deletes audit events older than before and reports how many.
func (tx *Tx) PruneAudit(before time.Time) (int, error) {
	var doomed [][]byte
	if err := tx.ForEachAudit(time.Time{}, func(e *AuditEvent) error {
		if e.Time.Before(before) {
			doomed = append(doomed, binary.BigEndian.AppendUint64(nil, e.Seq))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	b := tx.bucket(bucketAudit)
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}
