package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/meshwave/meshwave/internal/wql"
)

// TestSelectAcrossBlocks: reading block by block (partitions) returns
// exactly what one tsdb querier over the whole range returns, with data in
// two persisted blocks, the head, and out-of-order samples inside a
// block's range.
func TestSelectAcrossBlocks(t *testing.T) {
	const hour = int64(3_600_000)
	now := base()
	t0 := now/(2*hour)*(2*hour) - 4*hour // two 2 h blocks: [t0, t0+2h), [t0+2h, t0+4h)
	data := t.TempDir()
	dir := filepath.Join(data, "tsdb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for blk := range int64(2) {
		w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 2*hour)
		if err != nil {
			t.Fatal(err)
		}
		app := w.Appender(context.Background())
		for k := range 6 {
			if k == 5 && blk == 0 {
				continue // a series that starts in the second block
			}
			ls := labels.FromStrings(labelName, "m", labelSource, "h", "k", fmt.Sprint(k))
			for ts := t0 + blk*2*hour; ts < t0+(blk+1)*2*hour; ts += 10 * 60_000 {
				if _, err := app.Append(0, ls, ts+int64(k)*1000, float64(ts/60_000+int64(k))); err != nil {
					t.Fatal(err)
				}
			}
			if k == 0 && blk == 0 {
				// The first block then ends (MaxTime, exclusive) where the
				// second one's first sample is.
				if _, err := app.Append(0, ls, t0+2*hour-1, -1); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	s := start(t, Config{DataDir: data})
	if n := len(s.metrics.db.Blocks()); n != 2 {
		t.Fatalf("%d blocks", n)
	}
	// Head samples after the blocks, for old and new series, and
	// out-of-order ones inside the second block's range (one duplicating a
	// block sample's timestamp).
	var body strings.Builder
	for k := range 7 {
		for ts := t0 + 4*hour; ts <= now; ts += 15 * 60_000 {
			fmt.Fprintf(&body, "m %d %d source=h k=%d\n", k, ts/1000, k)
		}
	}
	fmt.Fprintf(&body, "m 99 %d source=h k=1\n", (t0+3*hour-60_000)/1000)
	fmt.Fprintf(&body, "m 98 %d source=h k=2\n", (t0+3*hour+2000)/1000)
	if code, res := post(t, s.url, "wavefront", body.String()); code != 202 || len(res.Rejected) != 0 {
		t.Fatalf("POST: %d %+v", code, res)
	}
	eventually(t, "head samples", func() bool { return len(selectAll(t, s.Server, "m")) == 7 })
	eventually(t, "out-of-order samples", func() bool {
		for _, ser := range selectAll(t, s.Server, "m") {
			for _, p := range ser.Points {
				if p.V == 98 {
					return true
				}
			}
		}
		return false
	})

	for _, r := range [][2]int64{
		{t0, now}, {t0 - hour, now + hour}, {t0 + 2*hour, t0 + 2*hour}, {t0 + 2*hour - 1, t0 + 2*hour},
		{t0 + hour, t0 + 3*hour}, {t0 + 3*hour, now}, {t0 + 4*hour, now}, {t0 + 5, t0 + 4*hour - 1},
	} {
		got, err := s.metrics.Select(context.Background(), "m", nil, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if want := singleQuerier(t, s.metrics.db, r[0], r[1]); !reflect.DeepEqual(got, want) {
			t.Errorf("[t0%+d, t0%+d]: partitions %v\nwhole range %v", r[0]-t0, r[1]-t0, got, want)
		}
	}
}

// singleQuerier reads series "m" through one querier over [mint, maxt].
func singleQuerier(t *testing.T, db *tsdb.DB, mint, maxt int64) []wql.Series {
	q, err := db.Querier(mint, maxt)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, labelName, "m"))
	var out []wql.Series
	for set.Next() {
		ser := seriesOf(set.At().Labels(), new(tagArena))
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			ser.Points = append(ser.Points, wql.Point{T: ts, V: v})
		}
		if len(ser.Points) > 0 {
			out = append(out, ser)
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
