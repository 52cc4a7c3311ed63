package claim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mya/deid/sinks/objstore"
)

// ReadObject reads the binding stored under key in st (a root on object
// storage); ok is false when there is none.
func ReadObject(ctx context.Context, st objstore.Store, key string) (b *Binding, ok bool, err error) {
	rc, err := st.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<24))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s/%s: %w", st, key, err)
	}
	b, err = decode(st.String()+"/"+key, data)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// CreateObject binds the root st: it stores b under key with a conditional
// create, so that of two runs binding a new root at once exactly one
// binding is written. When another is there already, it returns that one
// and created is false: the caller checks this run against it (Check), as
// it would have if it had read it first.
func CreateObject(ctx context.Context, st objstore.Store, key string, b *Binding) (have *Binding, created bool, err error) {
	b.Version = bindingVersion
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, false, err
	}
	err = st.Put(ctx, key, bytes.NewReader(append(data, '\n')), objstore.PutOptions{IfNotExists: true})
	if errors.Is(err, objstore.ErrExists) {
		have, ok, rerr := ReadObject(ctx, st, key)
		if rerr != nil {
			return nil, false, rerr
		}
		if !ok {
			return nil, false, fmt.Errorf("%s/%s was there, then gone: another process is changing the root", st, key)
		}
		return have, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}
