package authz

import (
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// A partial decoder for the CheckRequest.
//
// Decoding the whole CheckRequest with protobuf-go is the largest single
// cost of a Check (every header, the body, metadata, TLS and destination
// attributes become strings, maps and messages nobody reads).
// decodeCheckRequest reads the wire format with protowire and builds only
// what the decision path reads; everything else is validated exactly as
// proto.Unmarshal validates it (so a message is refused iff proto.Unmarshal
// refuses it) and then dropped.
//
// Fields of the CheckRequest that non-test code in package authz reads
// (request.go, credentials.go, decide.go, server.go, peercert.go), and so
// what the decoder keeps:
//
//	attributes.source.address.socket_address.address  sourceIP (ip rules)
//	attributes.source.principal                       policy.Subject.Principal
//	attributes.source.certificate                     HasCertificate, CommonName
//	attributes.context_extensions["application"]      routing by name (only that key)
//	attributes.request.http (presence)                malformed_request when absent
//	attributes.request.http.host, .path               routing
//	attributes.request.http.headers                   only the names below
//	attributes.request.http.header_map.headers[]      key, value, raw_value; the names
//	                                                  below; only when headers is empty
//
// Header names kept (compared as request.go compares them: same length and
// strings.EqualFold): :path, :authority, cookie, x-request-id (decision
// log), x-forwarded-for (trusted proxies), cf-access-token,
// cf-access-client-id, cf-access-client-secret, and every application's
// service_token_header in the Snapshot the request is decided with
// (Snapshot.headers).
//
// request.parse reads header_map only when the headers map is empty, so
// when the message has at least one headers entry the header_map is
// validated and dropped, and a headers map whose entries were all dropped
// stays empty: the request reads the same either way.
//
// Everything else (destination, request.time, http id, method, scheme,
// query, fragment, size, protocol, body, raw_body, metadata_context,
// route_metadata_context, tls_session, source.service and labels, the other
// socket address fields, unknown fields) is validated and skipped.
//
// Anything the decoder does not model exactly (a message type that is not
// proto3, packed scalars, groups in the schema) makes it return
// errFallback, and the caller decodes with proto.Unmarshal instead: the
// whole message, unfiltered.
//
// String lifetime: kept strings are copied out of the receive buffer (gRPC
// reuses it after Unmarshal) into a per-request arena and handed out with
// unsafe.String. The arena is never written again once a string points
// into it, and the garbage collector keeps it alive while any of them is
// referenced: retaining one string (the caches clone what they keep)
// retains its arena chunk.

var (
	errDecode   = errors.New("authz: cannot parse invalid wire-format data")
	errUTF8     = errors.New("authz: string field contains invalid UTF-8")
	errDepth    = errors.New("authz: exceeded maximum recursion depth")
	errFallback = errors.New("authz: message needs the full decoder")
	// errUnknown: a known field with the wrong wire type, which
	// proto.Unmarshal keeps as an unknown field (never returned).
	errUnknown = errors.New("authz: unknown field")
)

var (
	mdCheckRequest  = (&authv3.CheckRequest{}).ProtoReflect().Descriptor()
	mdAttributes    = (&authv3.AttributeContext{}).ProtoReflect().Descriptor()
	mdPeer          = (&authv3.AttributeContext_Peer{}).ProtoReflect().Descriptor()
	mdAddress       = (&corev3.Address{}).ProtoReflect().Descriptor()
	mdSocketAddress = (&corev3.SocketAddress{}).ProtoReflect().Descriptor()
	mdRequest       = (&authv3.AttributeContext_Request{}).ProtoReflect().Descriptor()
	mdHTTP          = (&authv3.AttributeContext_HttpRequest{}).ProtoReflect().Descriptor()
	mdHeaderMap     = (&corev3.HeaderMap{}).ProtoReflect().Descriptor()
	mdHeaderValue   = (&corev3.HeaderValue{}).ProtoReflect().Descriptor()
)

// Field numbers the decoder reads (envoy/service/auth/v3/attribute_context.proto,
// envoy/config/core/v3/address.proto and base.proto).
const (
	fCheckAttributes       = 1 // CheckRequest.attributes
	fAttrSource            = 1 // AttributeContext.source
	fAttrRequest           = 4 // AttributeContext.request
	fAttrContextExtensions = 10
	fPeerAddress           = 1
	fPeerPrincipal         = 4
	fPeerCertificate       = 5
	fAddrSocket            = 1 // Address.socket_address (oneof address)
	fAddrPipe              = 2 // Address.pipe (oneof address)
	fAddrInternal          = 3 // Address.envoy_internal_address (oneof address)
	fSockAddress           = 2
	fRequestHTTP           = 2
	fHTTPHeaders           = 3
	fHTTPPath              = 4
	fHTTPHost              = 5
	fHTTPHeaderMap         = 13
	fHeaderMapHeaders      = 1
	fHeaderValueKey        = 1
	fHeaderValueValue      = 2
	fHeaderValueRaw        = 3
	fMapKey                = 1
	fMapValue              = 2
)

// headerNames is the set of custom header names (applications'
// ServiceTokenHeader) a Snapshot's decisions may read.
type headerNames struct {
	lens  [4]uint64           // bit n: some ASCII name has length n (< 256)
	ascii map[string]struct{} // ASCII names, lower-cased
	other []string            // names that are not short ASCII (never, if validated)
}

// newHeaderNames collects eng's ServiceTokenHeader names.
func newHeaderNames(eng *policy.Engine) *headerNames {
	h := &headerNames{}
	for _, a := range eng.Apps() {
		if n := a.App.ServiceTokenHeader; n != "" {
			h.add(n)
		}
	}
	return h
}

func (h *headerNames) add(name string) {
	if len(name) >= 256 || !isASCII(name) {
		h.other = append(h.other, name)
		return
	}
	if h.ascii == nil {
		h.ascii = make(map[string]struct{})
	}
	h.ascii[strings.ToLower(name)] = struct{}{}
	h.lens[len(name)>>6] |= 1 << (len(name) & 63)
}

// has reports whether request.lookup(name) could return header k for one
// of the names: len(k) == len(name) && strings.EqualFold(k, name). For an
// ASCII name that is ASCII case-insensitive equality; a key with a
// non-ASCII rune has more bytes than runes, so it cannot fold to an ASCII
// name of its own byte length.
func (h *headerNames) has(k string) bool {
	if h == nil {
		return false
	}
	for _, n := range h.other {
		if len(k) == len(n) && strings.EqualFold(k, n) {
			return true
		}
	}
	if len(k) >= 256 || h.lens[len(k)>>6]&(1<<(len(k)&63)) == 0 {
		return false
	}
	var buf [256]byte
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= utf8.RuneSelf {
			return false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := h.ascii[string(buf[:len(k)])]
	return ok
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// keepHeader reports whether gatehouse may read header k: request.header's
// names, or one of custom (request.lookup).
func keepHeader(k string, custom *headerNames) bool {
	switch len(k) {
	case len(headerPath):
		if strings.EqualFold(k, headerPath) {
			return true
		}
	case len(headerCookie):
		if strings.EqualFold(k, headerCookie) {
			return true
		}
	case len(headerAuthority):
		if strings.EqualFold(k, headerAuthority) {
			return true
		}
	case len(headerRequestID):
		if strings.EqualFold(k, headerRequestID) {
			return true
		}
	case len(headerForwardedFor): // also cf-access-token
		if strings.EqualFold(k, headerForwardedFor) || strings.EqualFold(k, headerAccessToken) {
			return true
		}
	case len(headerClientID):
		if strings.EqualFold(k, headerClientID) {
			return true
		}
	case len(headerClientSecret):
		if strings.EqualFold(k, headerClientSecret) {
			return true
		}
	}
	return custom.has(k)
}

var wellKnownNames = [...]string{
	headerPath, headerCookie, headerAuthority, headerRequestID, headerForwardedFor,
	headerAccessToken, headerClientID, headerClientSecret,
}

// wellKnownName returns the constant for a header name spelled exactly like
// one, so the common keys need no copy.
func wellKnownName(k string) (string, bool) {
	for _, c := range wellKnownNames {
		if k == c {
			return c, true
		}
	}
	return "", false
}

// unmarshalCheckRequest decodes b into m (which must be empty) keeping only
// what a decision reads, or everything when the fast decoder cannot model
// the message. fellBack reports the latter.
func unmarshalCheckRequest(b []byte, m *authv3.CheckRequest, custom *headerNames) (fellBack bool, err error) {
	d := checkDecoder{out: m, custom: custom}
	err = d.decode(b)
	if err == errFallback {
		proto.Reset(m)
		return true, proto.Unmarshal(b, m)
	}
	return false, err
}

// decodeBlock holds the messages a decoded request is made of, allocated
// together.
type decodeBlock struct {
	attrs   authv3.AttributeContext
	peer    authv3.AttributeContext_Peer
	addr    corev3.Address
	sockOne corev3.Address_SocketAddress
	sock    corev3.SocketAddress
	request authv3.AttributeContext_Request
	http    authv3.AttributeContext_HttpRequest
}

type checkDecoder struct {
	out    *authv3.CheckRequest
	custom *headerNames
	blk    *decodeBlock
	arena  []byte

	sockUsed   bool // blk.sock has been handed out
	sawHeaders bool // the message has at least one headers map entry
	// headerMaps are the header_map occurrences, decoded at the end (when
	// the headers map is empty) or only validated.
	headerMaps [][]byte
	hmDepth    int
}

// str copies b into the arena.
func (d *checkDecoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := d.copy(b)
	return unsafe.String(unsafe.SliceData(s), len(s))
}

func (d *checkDecoder) copy(b []byte) []byte {
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, max(len(b), 512))
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return d.arena[start:len(d.arena):len(d.arena)]
}

// view is a temporary string over b, for comparisons only: never stored.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (d *checkDecoder) block() *decodeBlock {
	if d.blk == nil {
		d.blk = new(decodeBlock)
	}
	return d.blk
}

func (d *checkDecoder) decode(b []byte) error {
	depth := protowire.DefaultRecursionLimit - 1 // proto.Unmarshal's, for the top message
	if err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num != fCheckAttributes || typ != protowire.BytesType {
			return skipField(mdCheckRequest, num, typ, b, depth)
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errDecode
		}
		if d.out.Attributes == nil {
			d.out.Attributes = &d.block().attrs
		}
		return n, d.attributes(v, depth)
	}); err != nil {
		return err
	}
	return d.finishHeaderMaps()
}

// message consumes one length-delimited message field of a message whose
// remaining depth is depth, calling f with its contents and its own depth.
func message(b []byte, depth int, f func(v []byte, depth int) error) (int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, errDecode
	}
	if depth--; depth < 0 {
		return 0, errDepth
	}
	return n, f(v, depth)
}

func (d *checkDecoder) attributes(b []byte, parent int) error {
	depth := parent - 1
	if depth < 0 {
		return errDepth
	}
	a := d.out.Attributes
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == fAttrSource && typ == protowire.BytesType:
			if a.Source == nil {
				a.Source = &d.block().peer
			}
			n, err = message(b, depth, d.peer)
		case num == fAttrRequest && typ == protowire.BytesType:
			if a.Request == nil {
				a.Request = &d.block().request
			}
			n, err = message(b, depth, d.request)
		case num == fAttrContextExtensions && typ == protowire.BytesType:
			n, err = message(b, depth, d.contextExtension)
		default:
			n, err = skipField(mdAttributes, num, typ, b, depth)
		}
		return n, err
	})
}

// contextExtension is one context_extensions map entry; only the
// application key is kept.
func (d *checkDecoder) contextExtension(b []byte, depth int) error {
	k, v, err := stringEntry(b)
	if err != nil {
		return err
	}
	if view(k) == contextKeyApplication {
		a := d.out.Attributes
		if a.ContextExtensions == nil {
			a.ContextExtensions = make(map[string]string, 1)
		}
		a.ContextExtensions[contextKeyApplication] = d.str(v)
	}
	return nil
}

// stringEntry reads a map<string, string> entry (fields absent are "").
func stringEntry(b []byte) (key, val []byte, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if (num != fMapKey && num != fMapValue) || typ != protowire.BytesType {
			return skipUnknown(num, typ, b)
		}
		s, n, err := consumeString(b)
		if num == fMapKey {
			key = s
		} else {
			val = s
		}
		return n, err
	})
	if err != nil {
		return nil, nil, err
	}
	return key, val, nil
}

// consumeString reads a proto3 string's bytes (wire type already checked).
func consumeString(b []byte) ([]byte, int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, 0, errDecode
	}
	if !utf8.Valid(v) {
		return nil, 0, errUTF8
	}
	return v, n, nil
}

func (d *checkDecoder) peer(b []byte, depth int) error {
	p := d.out.Attributes.Source
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == fPeerAddress && typ == protowire.BytesType:
			if p.Address == nil {
				p.Address = &d.block().addr
			}
			n, err = message(b, depth, d.address)
		case (num == fPeerPrincipal || num == fPeerCertificate) && typ == protowire.BytesType:
			var s []byte
			if s, n, err = consumeString(b); err == nil {
				if num == fPeerPrincipal {
					p.Principal = d.str(s)
				} else {
					p.Certificate = d.str(s)
				}
			}
		default:
			n, err = skipField(mdPeer, num, typ, b, depth)
		}
		return n, err
	})
}

// address decodes the Address oneof: socket_address is kept; pipe or
// envoy_internal_address replace it (as protobuf-go does: a oneof member
// that follows another replaces it; the same member again merges).
func (d *checkDecoder) address(b []byte, depth int) error {
	a := d.out.Attributes.Source.Address
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == fAddrSocket && typ == protowire.BytesType:
			if a.GetSocketAddress() == nil {
				blk := d.block()
				if !d.sockUsed {
					d.sockUsed = true
					blk.sockOne.SocketAddress = &blk.sock
					a.Address = &blk.sockOne
				} else {
					a.Address = &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{}}
				}
			}
			n, err = message(b, depth, d.socketAddress)
		case (num == fAddrPipe || num == fAddrInternal) && typ == protowire.BytesType:
			if n, err = skipField(mdAddress, num, typ, b, depth); err == nil {
				a.Address = nil // another member of the oneof: no socket address
			}
		default:
			n, err = skipField(mdAddress, num, typ, b, depth)
		}
		return n, err
	})
}

func (d *checkDecoder) socketAddress(b []byte, depth int) error {
	sa := d.out.Attributes.Source.Address.GetSocketAddress()
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		if num == fSockAddress && typ == protowire.BytesType {
			var s []byte
			if s, n, err = consumeString(b); err == nil {
				sa.Address = d.str(s)
			}
		} else {
			n, err = skipField(mdSocketAddress, num, typ, b, depth)
		}
		return n, err
	})
}

func (d *checkDecoder) request(b []byte, depth int) error {
	r := d.out.Attributes.Request
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		if num == fRequestHTTP && typ == protowire.BytesType {
			if r.Http == nil {
				r.Http = &d.block().http
			}
			n, err = message(b, depth, d.http)
		} else {
			n, err = skipField(mdRequest, num, typ, b, depth)
		}
		return n, err
	})
}

func (d *checkDecoder) http(b []byte, depth int) error {
	h := d.out.Attributes.Request.Http
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == fHTTPHeaders && typ == protowire.BytesType:
			n, err = message(b, depth, d.headerEntry)
		case (num == fHTTPPath || num == fHTTPHost) && typ == protowire.BytesType:
			var s []byte
			if s, n, err = consumeString(b); err == nil {
				if num == fHTTPPath {
					h.Path = d.str(s)
				} else {
					h.Host = d.str(s)
				}
			}
		case num == fHTTPHeaderMap && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return 0, errDecode
			}
			if depth-1 < 0 {
				return 0, errDepth
			}
			d.headerMaps = append(d.headerMaps, v)
			d.hmDepth = depth - 1
		default:
			n, err = skipField(mdHTTP, num, typ, b, depth)
		}
		return n, err
	})
}

// headerEntry is one headers map entry.
func (d *checkDecoder) headerEntry(b []byte, depth int) error {
	k, v, err := stringEntry(b)
	if err != nil {
		return err
	}
	d.sawHeaders = true
	if !keepHeader(view(k), d.custom) {
		return nil
	}
	h := d.out.Attributes.Request.Http
	if h.Headers == nil {
		h.Headers = make(map[string]string, 8)
	}
	h.Headers[d.name(k)] = d.str(v)
	return nil
}

// name is a kept header name as a string.
func (d *checkDecoder) name(k []byte) string {
	if s, ok := wellKnownName(view(k)); ok {
		return s
	}
	return d.str(k)
}

// finishHeaderMaps validates every header_map, and builds the kept entries
// when request.parse will read them: when the headers map is empty.
func (d *checkDecoder) finishHeaderMaps() error {
	if len(d.headerMaps) == 0 {
		return nil
	}
	var hm *corev3.HeaderMap
	if !d.sawHeaders {
		hm = &corev3.HeaderMap{}
		d.out.Attributes.Request.Http.HeaderMap = hm
	}
	for _, b := range d.headerMaps {
		if err := d.headerMap(b, d.hmDepth, hm); err != nil {
			return err
		}
	}
	return nil
}

// headerMap reads one HeaderMap message; hm nil only validates.
func (d *checkDecoder) headerMap(b []byte, depth int, hm *corev3.HeaderMap) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		if num == fHeaderMapHeaders && typ == protowire.BytesType {
			n, err = message(b, depth, func(v []byte, depth int) error {
				return d.headerValue(v, depth, hm)
			})
		} else {
			n, err = skipField(mdHeaderMap, num, typ, b, depth)
		}
		return n, err
	})
}

func (d *checkDecoder) headerValue(b []byte, depth int, hm *corev3.HeaderMap) error {
	var key, val, raw []byte
	if err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case (num == fHeaderValueKey || num == fHeaderValueValue) && typ == protowire.BytesType:
			var s []byte
			if s, n, err = consumeString(b); err == nil {
				if num == fHeaderValueKey {
					key = s
				} else {
					val = s
				}
			}
		case num == fHeaderValueRaw && typ == protowire.BytesType:
			if raw, n = protowire.ConsumeBytes(b); n < 0 {
				return 0, errDecode
			}
		default:
			n, err = skipField(mdHeaderValue, num, typ, b, depth)
		}
		return n, err
	}); err != nil {
		return err
	}
	if hm == nil || !keepHeader(view(key), d.custom) {
		return nil
	}
	hv := &corev3.HeaderValue{Key: d.name(key), Value: d.str(val)}
	if len(raw) > 0 {
		hv.RawValue = d.copy(raw)
	}
	hm.Headers = append(hm.Headers, hv)
	return nil
}

// Validation of what is skipped, driven by the message descriptors.

// eachField calls f with each field of the message b, f's b starting at the
// field's value; f returns how many bytes the value took.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, b []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if n, err = f(num, typ, b); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// consumeTag reads a field tag as protobuf-go's decoder does: field numbers
// outside [1, 2^29-1] and end-group tags outside a group are errors.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, 0, errDecode
	}
	if num := v >> 3; num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return 0, 0, 0, errDecode
	}
	typ := protowire.Type(v & 7)
	if typ == protowire.EndGroupType {
		return 0, 0, 0, errDecode
	}
	return protowire.Number(v >> 3), typ, n, nil
}

// skipField consumes and validates the value of field num of a message of
// type md whose remaining depth is depth.
func skipField(md protoreflect.MessageDescriptor, num protowire.Number, typ protowire.Type, b []byte, depth int) (int, error) {
	if fd := md.Fields().ByNumber(num); fd != nil {
		n, err := skipKnown(fd, typ, b, depth)
		if err != errUnknown {
			return n, err
		}
	}
	return skipUnknown(num, typ, b)
}

// skipUnknown consumes an unknown field (a group included).
func skipUnknown(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return 0, errDecode
	}
	return n, nil
}

// skipKnown validates a known field's value as protobuf-go's decoder does.
// It returns errUnknown when the wire type does not fit the field (the
// field is then an unknown field), errFallback for what it does not model.
func skipKnown(fd protoreflect.FieldDescriptor, typ protowire.Type, b []byte, depth int) (int, error) {
	if fd.ParentFile().Syntax() != protoreflect.Proto3 {
		return 0, errFallback // proto2 or editions: other UTF-8 and presence rules
	}
	if fd.IsMap() {
		// protobuf-go counts the entry's depth before looking at the wire type.
		if depth-1 < 0 {
			return 0, errDepth
		}
		if typ != protowire.BytesType {
			return 0, errUnknown
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errDecode
		}
		return n, skimMapEntry(v, fd, depth-1)
	}
	if fd.IsList() && fd.Kind() != protoreflect.MessageKind {
		return 0, errFallback // packed or not: not in the CheckRequest schema
	}
	switch fd.Kind() {
	case protoreflect.MessageKind:
		if typ != protowire.BytesType {
			return 0, errUnknown
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errDecode
		}
		return n, skim(v, fd.Message(), depth)
	case protoreflect.StringKind:
		if typ != protowire.BytesType {
			return 0, errUnknown
		}
		_, n, err := consumeString(b)
		return n, err
	case protoreflect.BytesKind:
		if typ != protowire.BytesType {
			return 0, errUnknown
		}
		return consumed(protowire.ConsumeBytes(b))
	case protoreflect.BoolKind, protoreflect.EnumKind,
		protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
		if typ != protowire.VarintType {
			return 0, errUnknown
		}
		return consumed(protowire.ConsumeVarint(b))
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		if typ != protowire.Fixed32Type {
			return 0, errUnknown
		}
		return consumed(protowire.ConsumeFixed32(b))
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		if typ != protowire.Fixed64Type {
			return 0, errUnknown
		}
		return consumed(protowire.ConsumeFixed64(b))
	}
	return 0, errFallback // groups
}

func consumed[T any](_ T, n int) (int, error) {
	if n < 0 {
		return 0, errDecode
	}
	return n, nil
}

// skim validates b as a message of type md, one level below a message whose
// remaining depth is parent.
func skim(b []byte, md protoreflect.MessageDescriptor, parent int) error {
	depth := parent - 1
	if depth < 0 {
		return errDepth
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		return skipField(md, num, typ, b, depth)
	})
}

// skimMapEntry validates a map entry; depth already counts the entry, as
// protobuf-go counts it.
func skimMapEntry(b []byte, fd protoreflect.FieldDescriptor, depth int) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		err = errUnknown
		switch num {
		case fMapKey:
			n, err = skipKnown(fd.MapKey(), typ, b, depth)
		case fMapValue:
			n, err = skipKnown(fd.MapValue(), typ, b, depth)
		}
		if err == errUnknown {
			n, err = skipUnknown(num, typ, b)
		}
		return n, err
	})
}
