package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	heartbeatAPI "github.com/segmentio/kafka-go/protocol/heartbeat"
)

// heartbeat sends the group coordinator one heartbeat of generation gen and
// member and returns the coordinator's answer: nil, or the kafka.Error it
// gave (IllegalGeneration, UnknownMemberId, RebalanceInProgress…).
//
// Not kafka.Client.Heartbeat: kafka-go v0.4.51 decodes the answer of
// versions 1 and above with its two fields swapped, so the coordinator's
// error lands in the throttle time and the caller sees success even from a
// stale generation. heartbeat speaks version 0, whose answer is the error
// alone — the version kafka-go's own consumer group sends — through the
// same transport (connection, TLS, SASL, coordinator look-up).
func (s *Source) heartbeat(ctx context.Context, group string, gen int32, member string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	m, err := s.conn.Transport.RoundTrip(ctx, kafka.TCP(s.cfg.Brokers...), &heartbeatV0{
		clientID: s.cfg.ClientID,
		req:      heartbeatAPI.Request{GroupID: group, GenerationID: gen, MemberID: member},
	})
	if err != nil {
		return err
	}
	res, ok := m.(*heartbeatAPI.Response)
	if !ok {
		return fmt.Errorf("heartbeat: unexpected answer %T", m)
	}
	if res.ErrorCode != 0 {
		return kafka.Error(res.ErrorCode)
	}
	return nil
}

// heartbeatV0 is a Heartbeat request that writes itself as version 0 and
// reads the version-0 answer, whatever version the connection negotiated.
// It is routed to the group's coordinator (protocol.GroupMessage).
type heartbeatV0 struct {
	clientID string
	req      heartbeatAPI.Request
}

var (
	_ protocol.RawExchanger = (*heartbeatV0)(nil)
	_ protocol.GroupMessage = (*heartbeatV0)(nil)
)

func (h *heartbeatV0) ApiKey() protocol.ApiKey { return protocol.Heartbeat }

func (h *heartbeatV0) Group() string { return h.req.GroupID }

func (h *heartbeatV0) Required(map[protocol.ApiKey]int16) bool { return true }

// heartbeatCorrelation is the correlation id of the raw exchange: the
// connection serves one request at a time, so any id is ours.
const heartbeatCorrelation = 0x6465

func (h *heartbeatV0) RawExchange(rw io.ReadWriter) (protocol.Message, error) {
	if err := protocol.WriteRequest(rw, 0, heartbeatCorrelation, h.clientID, &h.req); err != nil {
		return nil, err
	}
	id, res, err := protocol.ReadResponse(rw, protocol.Heartbeat, 0)
	if err != nil {
		return nil, err
	}
	if id != heartbeatCorrelation {
		return nil, errors.New("heartbeat: the answer carries another request's correlation id")
	}
	return res, nil
}
