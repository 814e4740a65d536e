package harness

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redisload/redisload/bridge"
)

// market is one traded symbol and its last price, which random-walks, so
// that consecutive tickers and trades of a symbol look like a market
// rather than noise (a consumer under test may check price sanity).
type market struct {
	symbol string
	price  float64
}

// exchanges are the venues named in payloads; each event picks one.
var exchanges = []string{"binance", "coinbase", "kraken", "okx", "bybit"}

// eventGen produces randomized, realistic event payloads. Everything it
// writes comes from its seeded generator, never the clock, so a seed
// reproduces the same events.
type eventGen struct {
	rng     *rand.Rand
	markets []market
	tradeID uint64
	// padMin and padMax, when set, pad each payload to a size drawn from
	// [padMin, padMax] (Config.PayloadSize).
	padMin, padMax int
}

// newEventGen starts every market at a realistic price, so payload sizes
// (digits before and after the point) are those of real quotes.
func newEventGen(rng *rand.Rand) *eventGen {
	return &eventGen{rng: rng, tradeID: 1_000_000, markets: []market{
		{"BTC/USDT", 65000}, {"ETH/USDT", 3500}, {"SOL/USDT", 150}, {"BNB/USDT", 600},
		{"XRP/USDT", 0.6}, {"ADA/USDT", 0.45}, {"DOGE/USDT", 0.15}, {"AVAX/USDT", 35},
	}}
}

// appendPayload appends one JSON payload for eventType to dst. Payloads are
// written by hand, not marshalled: the publish path allocates nothing, and
// the field order is fixed, which keeps a seeded run byte-identical.
// Sizes are those of real feeds: about 120 bytes for a ticker, 460 for an
// orderbook of ten levels a side, 20 to 70 for exchange status events.
func (g *eventGen) appendPayload(dst []byte, eventType string) []byte {
	start := len(dst)
	ex := exchanges[g.rng.IntN(len(exchanges))]
	dst = append(dst, `{"exchange":"`...)
	dst = append(dst, ex...)
	dst = append(dst, '"')
	switch eventType {
	case bridge.TypeTicker:
		m := g.step()
		spread := m.price * 0.0001
		dst = g.field(dst, "symbol", m.symbol)
		dst = g.num(dst, "price", m.price, m.price)
		dst = g.num(dst, "bid", m.price-spread, m.price)
		dst = g.num(dst, "ask", m.price+spread, m.price)
		dst = g.num(dst, "volume", 1000+g.rng.Float64()*100000, 100)
		dst = g.num(dst, "change24h", (g.rng.Float64()-0.5)*10, 100)
	case bridge.TypeTrade:
		m := g.step()
		g.tradeID++
		dst = g.field(dst, "symbol", m.symbol)
		dst = g.field(dst, "id", strconv.FormatUint(g.tradeID, 10))
		dst = g.num(dst, "price", m.price, m.price)
		dst = g.num(dst, "amount", g.rng.ExpFloat64()*1000/m.price, 0.001)
		dst = g.field(dst, "side", [2]string{"buy", "sell"}[g.rng.IntN(2)])
	case bridge.TypeOrderbook:
		m := g.step()
		dst = g.field(dst, "symbol", m.symbol)
		dst = g.levels(dst, "bids", m.price, -1)
		dst = g.levels(dst, "asks", m.price, +1)
	case bridge.TypeCandle:
		m := g.market()
		open := m.price
		m.price *= 1 + (g.rng.Float64()-0.5)*0.01
		hi := max(open, m.price) * (1 + g.rng.Float64()*0.002)
		lo := min(open, m.price) * (1 - g.rng.Float64()*0.002)
		dst = g.field(dst, "symbol", m.symbol)
		dst = g.field(dst, "interval", [4]string{"1m", "5m", "15m", "1h"}[g.rng.IntN(4)])
		dst = g.num(dst, "open", open, open)
		dst = g.num(dst, "high", hi, open)
		dst = g.num(dst, "low", lo, open)
		dst = g.num(dst, "close", m.price, open)
		dst = g.num(dst, "volume", g.rng.Float64()*5000, 100)
	case bridge.TypeExchangeDisconnected:
		dst = g.field(dst, "reason", [3]string{"ping timeout", "server closed connection", "network error"}[g.rng.IntN(3)])
	case bridge.TypeExchangeReconnecting:
		attempt := 1 + g.rng.IntN(10)
		dst = append(dst, `,"attempt":`...)
		dst = strconv.AppendInt(dst, int64(attempt), 10)
		dst = append(dst, `,"delayMs":`...)
		dst = strconv.AppendInt(dst, int64(min(1000<<(attempt-1), 30000)), 10)
	case bridge.TypeExchangeError:
		dst = g.field(dst, "code", [3]string{"ECONNRESET", "ETIMEDOUT", "RATE_LIMIT"}[g.rng.IntN(3)])
		dst = g.field(dst, "message", [3]string{"socket hang up", "request timed out", "too many requests"}[g.rng.IntN(3)])
	}
	if g.padMin > 0 {
		dst = g.pad(dst, len(dst)-start+1) // +1: the closing brace
	}
	return append(dst, '}')
}

// padding is what pad copies from.
var padding = strings.Repeat("x", 1024)

// pad appends ,"pad":"xx…" so that a payload of size bytes reaches the
// size drawn for it; one already as large is left as it is.
func (g *eventGen) pad(dst []byte, size int) []byte {
	target := g.padMin
	if g.padMax > g.padMin {
		target += g.rng.IntN(g.padMax - g.padMin + 1)
	}
	const overhead = len(`,"pad":""`)
	n := target - size - overhead
	if n <= 0 {
		return dst
	}
	dst = append(dst, `,"pad":"`...)
	for n > 0 {
		k := min(n, len(padding))
		dst = append(dst, padding[:k]...)
		n -= k
	}
	return append(dst, '"')
}

// market picks a symbol at random.
func (g *eventGen) market() *market { return &g.markets[g.rng.IntN(len(g.markets))] }

// step picks a symbol and moves its price by up to ±0.1 %.
func (g *eventGen) step() *market {
	m := g.market()
	m.price *= 1 + (g.rng.Float64()-0.5)*0.002
	return m
}

// levels appends ten price levels on one side of the book.
func (g *eventGen) levels(dst []byte, name string, mid float64, dir float64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":[`...)
	p := mid
	for i := 0; i < 10; i++ {
		p += dir * mid * 0.0001 * (1 + g.rng.Float64())
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendPrice(dst, p, mid)
		dst = append(dst, ',')
		dst = appendPrice(dst, g.rng.ExpFloat64()*5000/mid, 0.001)
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// field appends ,"name":"value"; values are fixed words that need no escaping.
func (g *eventGen) field(dst []byte, name, value string) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":"`...)
	dst = append(dst, value...)
	return append(dst, '"')
}

// num appends ,"name":v with the decimals of its scale.
func (g *eventGen) num(dst []byte, name string, v, scale float64) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return appendPrice(dst, v, scale)
}

// appendPrice writes v with the decimals a quote of that scale has: cents
// for BTC, more for sub-dollar coins and small amounts.
func appendPrice(dst []byte, v, scale float64) []byte {
	dec := 2
	switch {
	case scale < 0.01:
		dec = 6
	case scale < 1:
		dec = 5
	}
	return appendFixed(dst, v, dec)
}

// pow10 are the scales appendFixed rounds to.
var pow10 = [...]float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6}

// appendFixed writes v with dec decimals, as strconv.AppendFloat(v, 'f',
// dec) does but through an integer: every published event formats five to
// twenty prices, and the general float formatting was 5 % of the client's
// CPU at the highest rate. It rounds v×10^dec half away from zero, which
// may differ from AppendFloat's exact rounding in the last digit of a tie:
// a quote either way. Values too large for that (or not finite) take
// AppendFloat.
func appendFixed(dst []byte, v float64, dec int) []byte {
	if dec < 0 || dec >= len(pow10) || !(math.Abs(v) < 1e12) {
		return strconv.AppendFloat(dst, v, 'f', dec, 64)
	}
	n := int64(math.Round(math.Abs(v) * pow10[dec]))
	if v < 0 && n != 0 {
		dst = append(dst, '-')
	}
	scale := int64(pow10[dec])
	dst = strconv.AppendInt(dst, n/scale, 10)
	if dec == 0 {
		return dst
	}
	var frac [8]byte
	f := n % scale
	for i := dec - 1; i >= 0; i-- {
		frac[i] = byte('0' + f%10)
		f /= 10
	}
	dst = append(dst, '.')
	return append(dst, frac[:dec]...)
}
