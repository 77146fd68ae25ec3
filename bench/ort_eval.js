// ONNX Runtime's side of bench/onnx_vs_ort.sh: runs WINDOWS windows of CTX
// token ids (batch 1; ids (i*7919+13) % VOCAB as bench/forward uses) through
// MODEL with THREADS intra-op threads and all graph optimizations, and prints
// tokens per second over all windows (no warm-up, as lmsparse eval times
// its windows) and a checksum of the first window's logits.
// Usage: node bench/ort_eval.js MODEL CTX WINDOWS THREADS VOCAB
const ort = require('onnxruntime-node');

async function main() {
  const [model, ctx, windows, threads, vocab] = process.argv.slice(2);
  const T = Number(ctx), W = Number(windows), V = Number(vocab);
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const ids = new BigInt64Array(T);
  for (let i = 0; i < T; i++) ids[i] = BigInt((i * 7919 + 13) % V);
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('int64', ids, [1, T]) };
  let sum = 0;
  const start = process.hrtime.bigint();
  for (let w = 0; w < W; w++) {
    const out = await sess.run(feeds);
    const logits = out[sess.outputNames[0]].data;
    if (w === 0) for (let i = 0; i < logits.length; i++) sum += Math.abs(logits[i]);
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version} threads=${threads} ctx=${T}: ` +
    `${(T * W / secs).toFixed(1)} tokens/s (${W} windows, ${secs.toFixed(2)} s), mean|logit| ${(sum / (T * V)).toFixed(6)}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
