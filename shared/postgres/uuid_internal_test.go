package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

// TestBinaryUUIDs: ids go as [16]byte each, which pgx encodes in binary
// without first failing; one that is not a UUID sends them all as they
// are, for PostgreSQL to refuse.
func TestBinaryUUIDs(t *testing.T) {
	ids := []string{"c0b0c6de-5c5f-4a4f-9a55-3b0b3c4d5e6f", "00000000-0000-0000-0000-000000000001"}
	got := binaryUUIDs(ids)
	require.Equal(t, [][16]byte{
		{0xc0, 0xb0, 0xc6, 0xde, 0x5c, 0x5f, 0x4a, 0x4f, 0x9a, 0x55, 0x3b, 0x0b, 0x3c, 0x4d, 0x5e, 0x6f},
		{15: 1},
	}, got)
	_, err := pgtype.NewMap().Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, got, nil)
	require.NoError(t, err, "encoded in binary")

	bad := []string{ids[0], "not-a-uuid"}
	require.Equal(t, bad, binaryUUIDs(bad))
	underscores := []string{"c0b0c6de_5c5f_4a4f_9a55_3b0b3c4d5e6f"} // pgtype alone would take it
	require.Equal(t, underscores, binaryUUIDs(underscores))
	require.Equal(t, [][16]byte{}, binaryUUIDs(nil), "an empty array, not NULL")
}
