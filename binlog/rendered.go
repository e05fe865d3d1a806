package binlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// With DecodeOptions.RenderJSON, a transaction's changes are kept as the
// JSON text AppendJSON writes for them rather than as Changes: the pool's
// workers render each row event's changes as they decode them, while the
// values are in their cache, and then reuse the arena's memory for the
// next event (see arena.reset). Profiles of `sluice dump --format json`
// showed the values' memory (allocating it, faulting it in, collecting
// it) and encoding them later on the writer's single goroutine as most of
// its cost. Changes decoded by the reader (see deferRows) are rendered by
// it, in order, with its own encoder.

// errRenderedOnly is the error of Changes for a transaction decoded with
// DecodeOptions.RenderJSON.
var errRenderedOnly = errors.New("the transaction's changes were decoded as JSON text only (DecodeOptions.RenderJSON)")

// renderedChanges holds a transaction's changes as JSON text: parts in
// memory up to a budget, then in a temporary file, as changeBuffer does.
// Each part is one or more change objects separated by commas; the
// transaction's "changes" array is the parts joined by commas.
type renderedChanges struct {
	enc    *JSONEncoder // the reader's, for changes decoded by it
	parts  [][]byte
	refs   []*refBuf // the chunk of each part (see refBuf), or nil
	n      int       // changes
	length int64     // of the parts joined, in memory or in the file
	budget int64     // 0: no limit
	dir    string

	file *os.File
	w    *bufio.Writer
}

func newRenderedChanges(budget int64, dir string, enc *JSONEncoder) *renderedChanges {
	return &renderedChanges{budget: budget, dir: dir, enc: enc}
}

// add appends a part of n changes, and takes over ref, the reference to
// the chunk part is in (nil: memory of its own).
func (r *renderedChanges) add(part []byte, n int, ref *refBuf) error {
	if n == 0 {
		ref.release()
		return nil
	}
	sep := int64(0)
	if r.n > 0 {
		sep = 1
	}
	r.n += n
	r.length += sep + int64(len(part))
	if r.file == nil {
		r.parts = append(r.parts, part)
		r.refs = append(r.refs, ref)
		if r.budget <= 0 || r.length <= r.budget {
			return nil
		}
		f, w, err := createSpillFile(r.dir)
		if err != nil {
			return err
		}
		r.file, r.w = f, w
		parts := r.parts
		r.parts = nil
		defer r.releaseParts(0)
		for i, p := range parts {
			if err := r.write(p, i > 0); err != nil {
				return err
			}
		}
		return nil
	}
	defer ref.release()
	return r.write(part, sep > 0)
}

// releaseParts drops the references of the parts from the i-th on.
func (r *renderedChanges) releaseParts(i int) {
	for _, ref := range r.refs[i:] {
		ref.release()
	}
	clear(r.refs[i:])
	r.refs = r.refs[:i]
}

func (r *renderedChanges) write(part []byte, sep bool) error {
	if sep {
		if err := r.w.WriteByte(','); err != nil {
			return fmt.Errorf("spill transaction: %w", err)
		}
	}
	if _, err := r.w.Write(part); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	return nil
}

// addChanges renders changes decoded by the reader and adds them.
func (r *renderedChanges) addChanges(cs []*Change) error {
	return r.add(r.render(cs), len(cs), nil)
}

// render renders changes decoded by the reader, as a part of their own.
func (r *renderedChanges) render(cs []*Change) []byte {
	var part []byte
	for i, c := range cs {
		if i > 0 {
			part = append(part, ',')
		}
		part = r.enc.appendChange(part, c)
	}
	return part
}

// renderedMark is where a transaction's rendered changes end, for
// ROLLBACK TO SAVEPOINT: the mark is taken once every change before it is
// rendered, so it falls between two parts.
type renderedMark struct {
	parts  int
	length int64
}

func (r *renderedChanges) mark() renderedMark {
	return renderedMark{parts: len(r.parts), length: r.length}
}

// truncate drops the changes after mark m, the first n.
func (r *renderedChanges) truncate(m renderedMark, n int) error {
	if n >= r.n {
		return nil
	}
	r.n, r.length = n, m.length
	if r.file == nil {
		clear(r.parts[m.parts:])
		r.parts = r.parts[:m.parts]
		r.releaseParts(m.parts)
		return nil
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	if err := r.file.Truncate(m.length); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	if _, err := r.file.Seek(m.length, io.SeekStart); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	return nil
}

// appendTo appends the changes joined by commas.
func (r *renderedChanges) appendTo(dst []byte) ([]byte, error) {
	if r.file == nil {
		for i, p := range r.parts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, p...)
		}
		return dst, nil
	}
	if err := r.flush(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, make([]byte, r.length)...)
	if _, err := r.file.ReadAt(dst[start:], 0); err != nil {
		return dst[:start], fmt.Errorf("read spilled transaction: %w", err)
	}
	return dst, nil
}

// flush writes what the file's buffer holds, and checks that the file
// has every byte of the changes.
func (r *renderedChanges) flush() error {
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	st, err := r.file.Stat()
	if err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	if st.Size() != r.length {
		return fmt.Errorf("spill transaction: the file has %d bytes, %d were written", st.Size(), r.length)
	}
	return nil
}

// heapBytes estimates the memory the parts hold.
func (r *renderedChanges) heapBytes() int64 {
	if r.file != nil {
		return 256 << 10
	}
	return r.length
}

func (r *renderedChanges) close() error {
	r.parts = nil
	r.releaseParts(0)
	if r.file == nil {
		return nil
	}
	err := r.file.Close()
	r.file = nil
	return err
}
