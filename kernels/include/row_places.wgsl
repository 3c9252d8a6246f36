// Where each row of a batch of independent rows belongs (continuous batching: decode rows of many
// sequences and a prefill chunk of one, src/model/rows-forward.ts): row r is one token of the
// sequence in KV-cache slot `slot`, at position `pos` of that sequence. Shared by rope_rows_fwd,
// kv_scatter_fwd and attention_rows_fwd; the host writes the array each step (8 bytes a row).
struct RowPlace {
  slot: u32,
  pos: u32,
}
