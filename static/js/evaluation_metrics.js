// Threshold-dependent metrics recomputed in the browser from a stored score matrix, with the
// same definitions as app/evaluation (sklearn's zero_division=0). Scores are float32 and
// thresholds are rounded to float32 (Math.fround), as the server decides: score >= threshold.

export function decodeMatrix(matrix) {
  const [n, k] = matrix.shape;
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const scoreBytes = bytes(matrix.scores_f32);
  const scores = new Float32Array(scoreBytes.buffer, scoreBytes.byteOffset, n * k);
  return { n, k, assetIds: matrix.asset_ids, scores, truth: bytes(matrix.truth_u8) };
}

const ratio = (a, b) => (b > 0 ? a / b : 0);

export function predictions(data, thresholds) {
  const { n, k, scores } = data;
  const limits = thresholds.map((t) => Math.fround(t));
  const predicted = new Uint8Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) predicted[i * k + j] = scores[i * k + j] >= limits[j] ? 1 : 0;
  }
  return predicted;
}

export function computeMetrics(data, thresholds) {
  const { n, k, truth } = data;
  const predicted = predictions(data, thresholds);
  const tp = new Array(k).fill(0), fp = new Array(k).fill(0), fn = new Array(k).fill(0);
  let jaccardSum = 0, exact = 0, mismatches = 0, trueLabels = 0, predictedLabels = 0;
  const cooc = Array.from({ length: k }, () => new Array(k).fill(0));
  const imageCorrect = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let inter = 0, t = 0, p = 0, wrong = 0;
    for (let j = 0; j < k; j++) {
      const y = truth[i * k + j], q = predicted[i * k + j];
      if (y && q) { tp[j]++; inter++; } else if (q) fp[j]++; else if (y) fn[j]++;
      t += y; p += q;
      if (y !== q) wrong++;
      if (q) for (let m = 0; m <= j; m++) if (predicted[i * k + m]) { cooc[j][m]++; if (m !== j) cooc[m][j]++; }
    }
    const union = t + p - inter;
    jaccardSum += ratio(inter, union);
    if (!wrong) { exact++; imageCorrect[i] = 1; }
    mismatches += wrong; trueLabels += t; predictedLabels += p;
  }
  const perLabel = tp.map((_, j) => ({
    tp: tp[j], fp: fp[j], fn: fn[j], tn: n - tp[j] - fp[j] - fn[j],
    precision: ratio(tp[j], tp[j] + fp[j]),
    recall: ratio(tp[j], tp[j] + fn[j]),
    f1: ratio(2 * tp[j], 2 * tp[j] + fp[j] + fn[j]),
  }));
  const sum = (a) => a.reduce((s, v) => s + v, 0);
  const mean = (a) => (a.length ? sum(a) / a.length : 0);
  const TP = sum(tp), FP = sum(fp), FN = sum(fn);
  const summary = {
    micro_precision: ratio(TP, TP + FP),
    micro_recall: ratio(TP, TP + FN),
    micro_f1: ratio(2 * TP, 2 * TP + FP + FN),
    macro_precision: mean(perLabel.map((l) => l.precision)),
    macro_recall: mean(perLabel.map((l) => l.recall)),
    macro_f1: mean(perLabel.map((l) => l.f1)),
    jaccard: n ? jaccardSum / n : 0,
    subset_accuracy: n ? exact / n : 0,
    hamming_loss: n * k ? mismatches / (n * k) : 0,
    label_cardinality: n ? trueLabels / n : 0,
    predicted_cardinality: n ? predictedLabels / n : 0,
  };
  return { predicted, perLabel, summary, cooccurrence: cooc, imageCorrect };
}

export function truthCooccurrence(data) {
  const { n, k, truth } = data;
  const cooc = Array.from({ length: k }, () => new Array(k).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      if (!truth[i * k + j]) continue;
      for (let m = 0; m < k; m++) if (truth[i * k + m]) cooc[j][m]++;
    }
  }
  return cooc;
}
