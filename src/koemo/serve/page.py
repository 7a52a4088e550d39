"""The one page `koemo serve` answers at `/`: upload or record a wav, optionally type the text, see a bar chart of
each model's and the stack's probabilities (and the transcript when ASR supplied the text). Self-contained: no
script, style or font from anywhere else. Every bar carries `data-model`, `data-class` and `data-value` (the
probability as the API returned it), so a test can read the chart's numbers from the DOM."""

PAGE = r"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>koemo: Korean speech emotion</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:15px/1.4 system-ui,sans-serif;margin:24px auto;max-width:860px;color:#222}
 h1{font-size:20px} fieldset{border:1px solid #ccc;border-radius:6px;margin:0 0 12px;padding:10px 14px}
 textarea{width:100%;box-sizing:border-box;font:inherit} button{font:inherit;padding:4px 14px;margin-right:8px}
 #status{margin:10px 0;min-height:1.4em} .error{color:#b00020} .note{color:#555;font-size:13px}
 table.chart{border-collapse:collapse;width:100%} .chart td{padding:2px 6px;vertical-align:middle}
 .chart td.model{font-weight:600;width:90px} .chart td.cls{width:80px;color:#444}
 .track{background:#eee;height:16px;width:100%;position:relative}
 .bar{height:16px;background:#3a78c2} .bar.top{background:#d2691e}
 tr.stack td{border-top:2px solid #999} .value{width:52px;text-align:right;font-variant-numeric:tabular-nums}
 tr.skipped td{color:#999}
</style></head><body>
<h1>koemo: emotion of a Korean utterance</h1>
<form id="form">
 <fieldset><legend>Speech</legend>
  <input type="file" id="wav" name="wav" accept="audio/wav,.wav">
  <button type="button" id="record">Record</button><span id="recinfo" class="note"></span>
 </fieldset>
 <fieldset><legend>Text (optional: without it the speech is transcribed, when the export has an ASR model)</legend>
  <textarea id="text" name="text" rows="2" placeholder="예: 정말 화가 나요"></textarea>
 </fieldset>
 <button type="submit" id="go">Predict</button>
</form>
<div id="status"></div>
<div id="transcript"></div>
<div id="result"></div>
<div id="notes" class="note"></div>
<script>
"use strict";
let recorded = null;
const $ = (id) => document.getElementById(id);

function wavBlob(chunks, rate) {            // 16-bit PCM mono WAV from Float32 chunks
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buf = new ArrayBuffer(44 + 2 * n), v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
  v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data");
  v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) for (let i = 0; i < c.length; i++, o += 2) {
    const s = Math.max(-1, Math.min(1, c[i])); v.setInt16(o, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buf], {type: "audio/wav"});
}

let rec = null;
$("record").addEventListener("click", async () => {
  if (rec) {                                  // stop
    rec.node.disconnect(); rec.source.disconnect(); rec.stream.getTracks().forEach(t => t.stop());
    recorded = wavBlob(rec.chunks, rec.ctx.sampleRate); await rec.ctx.close(); rec = null;
    $("record").textContent = "Record"; $("recinfo").textContent = ` recorded ${(recorded.size / 1024).toFixed(0)} KiB wav`;
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({audio: true});
    const ctx = new AudioContext(), source = ctx.createMediaStreamSource(stream);
    const node = ctx.createScriptProcessor(4096, 1, 1), chunks = [];
    node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(node); node.connect(ctx.destination);
    rec = {stream, ctx, source, node, chunks}; recorded = null;
    $("record").textContent = "Stop"; $("recinfo").textContent = " recording…";
  } catch (err) { $("recinfo").textContent = " no microphone: " + err; }
});

function draw(answer) {
  const table = document.createElement("table"); table.className = "chart";
  for (const [model, result] of Object.entries(answer.models)) {
    if (!result) {
      const tr = table.insertRow(); tr.className = "skipped"; tr.dataset.model = model;
      tr.insertCell().textContent = model; const td = tr.insertCell(); td.colSpan = 3;
      td.textContent = "skipped: its input is missing"; continue;
    }
    answer.classes.forEach((cls, k) => {
      const p = result.probabilities[cls], tr = table.insertRow();
      if (model === "stack" && k === 0) tr.className = "stack";
      const name = tr.insertCell(); name.className = "model"; name.textContent = k === 0 ? model : "";
      const c = tr.insertCell(); c.className = "cls"; c.textContent = cls;
      const track = document.createElement("div"); track.className = "track";
      const bar = document.createElement("div");
      bar.className = "bar" + (cls === result.predicted ? " top" : "");
      bar.style.width = (100 * p).toFixed(2) + "%";
      bar.dataset.model = model; bar.dataset.class = cls; bar.dataset.value = String(p);
      track.appendChild(bar); tr.insertCell().appendChild(track);
      const val = tr.insertCell(); val.className = "value"; val.textContent = p.toFixed(3);
    });
  }
  $("result").replaceChildren(table);
  $("transcript").textContent = answer.transcript != null
    ? "Transcript (from speech recognition, not typed): " + answer.transcript : "";
  $("notes").replaceChildren(...answer.notes.map(n => { const d = document.createElement("div"); d.textContent = n; return d; }));
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(), file = $("wav").files[0] || recorded, text = $("text").value.trim();
  if (file) data.append("wav", file, file.name || "recording.wav");
  if (text) data.append("text", text);
  $("status").className = ""; $("status").textContent = "predicting…";
  try {
    const response = await fetch("api/predict", {method: "POST", body: data});
    const body = await response.json();
    if (!response.ok) { $("status").className = "error"; $("status").textContent = `${response.status}: ${body.detail}`; return; }
    $("status").textContent = "done"; document.body.dataset.state = "done"; draw(body);
  } catch (err) { $("status").className = "error"; $("status").textContent = String(err); }
});
</script></body></html>
"""
