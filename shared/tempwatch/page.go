package tempwatch

import "time"

// Cursor is the keyset position after the last item of a page, in the order
// every list uses: created_at DESC, id DESC.
type Cursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"i"`
}

// PageRequest asks for up to Limit items after Cursor (nil: the first page).
// Stores return up to Limit+1 items; the extra one only says a next page exists.
type PageRequest struct {
	Limit  int
	Cursor *Cursor
}
