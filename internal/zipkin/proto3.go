package zipkin

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// decodeProto3 decodes a zipkin.proto3 ListOfSpans with protowire, so no
// generated code or reflection is involved. Unknown fields are skipped;
// for repeated non-repeated fields the last wins and endpoints merge, as
// proto3 specifies.
func (d *Decoder) decodeProto3(body []byte) error {
	s := &d.cur
	for n := 0; len(body) > 0; {
		num, typ, m := protowire.ConsumeTag(body)
		if m < 0 {
			return protoError(m)
		}
		body = body[m:]
		if num != 1 {
			if m = protowire.ConsumeFieldValue(num, typ, body); m < 0 {
				return protoError(m)
			}
			body = body[m:]
			continue
		}
		if typ != protowire.BytesType {
			return errors.New("malformed proto3: ListOfSpans.spans has wire type " + strconv.Itoa(int(typ)))
		}
		msg, m := protowire.ConsumeBytes(body)
		if m < 0 {
			return protoError(m)
		}
		body = body[m:]
		if err := d.readSpanProto(msg, s); err != nil {
			return &SpanError{n, err}
		}
		if err := d.emit(s); err != nil {
			return err
		}
		n++
	}
	return nil
}

func protoError(code int) error {
	return errors.New("malformed proto3: " + protowire.ParseError(code).Error())
}

// protoFields walks the fields of one message, handing each to fn with
// its raw value: the varint or fixed64 in v, the bytes in b.
func protoFields(msg []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, m := protowire.ConsumeTag(msg)
		if m < 0 {
			return protoError(m)
		}
		msg = msg[m:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, m = protowire.ConsumeVarint(msg)
		case protowire.Fixed64Type:
			v, m = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			b, m = protowire.ConsumeBytes(msg)
		default:
			m = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if m < 0 {
			return protoError(m)
		}
		msg = msg[m:]
		if err := fn(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

func wireTypeError(field string) error {
	return errors.New("malformed proto3: wrong wire type for " + field)
}

func (d *Decoder) readSpanProto(msg []byte, s *Span) error {
	d.beginSpan(s)
	err := protoFields(msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		var err error
		want := protowire.BytesType
		switch num {
		case 4, 7, 12, 13:
			want = protowire.VarintType
		case 6:
			want = protowire.Fixed64Type
		case 1, 2, 3, 5, 8, 9, 10, 11:
		default:
			return nil
		}
		if typ != want {
			return wireTypeError("span field " + strconv.Itoa(int(num)))
		}
		switch num {
		case 1:
			if len(b) != 8 && len(b) != 16 {
				return errors.New("traceId must be 8 or 16 bytes, not " + strconv.Itoa(len(b)))
			}
			s.TraceID, err = d.traceID(d.hex(b))
		case 2:
			if len(b) != 8 {
				return errors.New("parentId must be 8 bytes, not " + strconv.Itoa(len(b)))
			}
			s.ParentID, err = d.parentID(d.hex(b))
		case 3:
			if len(b) != 8 {
				return errors.New("id must be 8 bytes, not " + strconv.Itoa(len(b)))
			}
			s.ID, err = d.spanID(d.hex(b))
		case 4:
			if v > uint64(KindConsumer) {
				return errors.New("unknown kind " + strconv.FormatUint(v, 10))
			}
			s.Kind = Kind(v)
		case 5:
			s.Name = d.lower(d.utf8(b))
		case 6:
			s.Timestamp = clampNonNegative(int64(v))
		case 7:
			s.Duration = clampNonNegative(int64(v))
		case 8:
			err = d.readEndpointProto(b, &s.LocalEndpoint)
		case 9:
			err = d.readEndpointProto(b, &s.RemoteEndpoint)
		case 10:
			err = d.readAnnotationProto(b)
		case 11:
			err = d.readTagProto(b)
		case 12:
			s.Debug = v != 0
		case 13:
			s.Shared = v != 0
		}
		return err
	})
	if err != nil {
		return err
	}
	return d.finishSpan(s)
}

func (d *Decoder) readEndpointProto(msg []byte, e *Endpoint) error {
	return protoFields(msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		want := protowire.BytesType
		switch num {
		case 4:
			want = protowire.VarintType
		case 1, 2, 3:
		default:
			return nil
		}
		if typ != want {
			return wireTypeError("endpoint field " + strconv.Itoa(int(num)))
		}
		switch num {
		case 1:
			e.ServiceName = d.lower(d.utf8(b))
		case 2, 3:
			// Addresses of another length are dropped, like unparsable
			// text addresses in JSON.
			if a, ok := netip.AddrFromSlice(b); ok {
				e.setIP(a)
			}
		case 4:
			p, err := port(int64(int32(v)))
			if err != nil {
				return err
			}
			e.Port = p
		}
		return nil
	})
}

func (d *Decoder) readAnnotationProto(msg []byte) error {
	var a Annotation
	err := protoFields(msg, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			a.Timestamp = int64(v)
		case num == 2 && typ == protowire.BytesType:
			a.Value = d.utf8(b)
		case num == 1 || num == 2:
			return wireTypeError("annotation field " + strconv.Itoa(int(num)))
		}
		return nil
	})
	if err == nil {
		d.anns = append(d.anns, a)
	}
	return err
}

// readTagProto reads one map entry; a missing key or value is the empty
// string, as proto3 map semantics say.
func (d *Decoder) readTagProto(msg []byte) error {
	var t Tag
	err := protoFields(msg, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		switch {
		case (num == 1 || num == 2) && typ != protowire.BytesType:
			return wireTypeError("tag field " + strconv.Itoa(int(num)))
		case num == 1:
			t.Key = d.utf8(b)
		case num == 2:
			t.Value = d.utf8(b)
		}
		return nil
	})
	if err == nil {
		d.tagIn = append(d.tagIn, t)
	}
	return err
}

// hex returns b as lower-case hex in the arena.
func (d *Decoder) hex(b []byte) []byte {
	out := d.alloc(hex.EncodedLen(len(b)))
	hex.Encode(out, b)
	return out
}

// utf8 replaces invalid UTF-8 with U+FFFD, as the reference's decoder does.
func (d *Decoder) utf8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := d.scratch[:0]
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = utf8.AppendRune(out, r)
		b = b[n:]
	}
	d.scratch = out[:0]
	s := d.alloc(len(out))
	copy(s, out)
	return s
}
