package tracker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
)

type dialAttrsKey struct{}

// ContextWithDialAttributes returns a copy of ctx that carries attrs: a
// DialFunc made by WrapDialer, called with that context or one derived from
// it, gives each connection it dials these attributes, as TrackAttributes
// gives them to Track. They are the connection's Resource.Attributes and
// are carried by its leak spans, after the tracker's own network and server
// attributes, so that an integration that knows more than the socket (the
// host name a client dialed, the protocol it speaks) says so. They must not
// contain credentials. With no attrs, ctx is returned unchanged; the
// attributes of an outer call are replaced, not added to.
func ContextWithDialAttributes(ctx context.Context, attrs ...attribute.KeyValue) context.Context {
	if len(attrs) == 0 {
		return ctx
	}
	return context.WithValue(ctx, dialAttrsKey{}, append([]attribute.KeyValue(nil), attrs...))
}

// dialAttributes are the attributes ctx carries for the connections dialed
// with it; nil if none.
func dialAttributes(ctx context.Context) []attribute.KeyValue {
	attrs, _ := ctx.Value(dialAttrsKey{}).([]attribute.KeyValue)
	return attrs
}
