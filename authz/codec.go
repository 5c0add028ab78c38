package authz

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Codec returns the gRPC codec for the ext_authz listener, to be installed
// with grpc.ForceServerCodecV2. It is grpc-go's proto codec, except that
// messages with vtprotobuf-generated marshalling (go-control-plane ships it
// for every ext_authz type, google.protobuf.Struct included) are encoded by
// that code rather than by protobuf-go's reflection. The bytes are the same
// wire format; the profile of a Check over gRPC showed reflection-driven
// marshalling of the response, above all the dynamic-metadata map, as the
// largest cost gatehouse adds over a server that answers a constant.
// Every message without vtproto code (gRPC health) goes to grpc-go's codec
// unchanged.
//
// Decoding a Check's request (which Server.Register's handler hands over as
// a *checkIn) reads only the fields a decision needs (decode.go); every
// other message is decoded by grpc-go's codec.
func Codec() encoding.CodecV2 {
	return codec{fallback: encoding.GetCodecV2(protocodec.Name)}
}

type codec struct {
	fallback encoding.CodecV2
	// fullDecode turns the partial CheckRequest decoder off (benchmarks).
	fullDecode bool
}

// vtMarshaler is the vtprotobuf-generated marshalling of a message.
type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVTStrict(dAtA []byte) (int, error)
}

func (c codec) Name() string { return protocodec.Name }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	in, ok := v.(*checkIn)
	if !ok || c.fullDecode || !in.partialOK() {
		return c.fallback.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	_, err := unmarshalCheckRequest(buf.ReadOnlyData(), &in.CheckRequest, in.snap.headers)
	return err
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(*preEncoded); ok && p.wire != nil {
		// Shared and immutable: gRPC only reads it, and SliceBuffer's Free
		// does nothing.
		return mem.BufferSlice{mem.SliceBuffer(p.wire)}, nil
	}
	m, ok := v.(vtMarshaler)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if err := marshalVT(m, buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if err := marshalVT(m, (*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// marshalVT fills buf, which is exactly m.SizeVT() long. vtproto writes
// from the end backwards, so a message that changed size in between (it
// must not: responses are immutable once built) would leave a gap.
func marshalVT(m vtMarshaler, buf []byte) error {
	n, err := m.MarshalToSizedBufferVTStrict(buf)
	if err != nil {
		return fmt.Errorf("authz codec: marshal %T: %w", m, err)
	}
	if n != len(buf) {
		return fmt.Errorf("authz codec: marshal %T: wrote %d bytes, sized %d", m, n, len(buf))
	}
	return nil
}

// ServerOptions are the gRPC server options the ext_authz listener is
// meant to run with: Codec, which encodes with vtproto code where it is
// compiled in (-tags vtprotobuf), and sends a cached token allow as the
// bytes encoded when it was built. grpc.NumStreamWorkers is left off on
// purpose: it saved the stack growth of a goroutine per Check but made the
// p99 1.3-1.5x the floor's instead of 1.0-1.2x in an A/B run
// (docs/performance.md, change 4).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(Codec())}
}
