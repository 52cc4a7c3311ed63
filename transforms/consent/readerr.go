package consent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// readProblem says why a settings record could not be read, without
// quoting it: encoding/json's messages quote the input (a number, a
// character), and a settings record is input data, so its content must not
// reach a log through the error. Field paths come from Record's tags, and
// offsets are positions.
func readProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%s has the wrong type (want %s)", typ.Field, typ.Type)
	case errors.As(err, &typ):
		return "not a JSON object"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "not readable as JSON"
}
