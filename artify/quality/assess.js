const CHOICE_TEXT = {left: "Left is better", same: "About the same", right: "Right is better"};
const session = Array.from(crypto.getRandomValues(new Uint8Array(6)), b => b.toString(16).padStart(2, "0")).join("");
function shuffle(a) { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; } return a; }
function blobUrl(b64) {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], {type: "video/mp4"}));
}
const urls = {};
for (const [id, b64] of Object.entries(CLIPS)) urls[id] = blobUrl(b64);
const trials = [];
SEGMENTS.forEach((seg, s) => {
  seg.url = blobUrl(seg.reference);
  for (let i = 0; i < seg.clips.length; i++)
    for (let j = i + 1; j < seg.clips.length; j++)
      trials.push(Object.assign({segment: s}, Math.random() < 0.5 ? {left: seg.clips[i], right: seg.clips[j]}
                                                                : {left: seg.clips[j], right: seg.clips[i]}));
});
shuffle(trials);
const answers = trials.map(() => ({}));
let current = 0;

function csvText() {
  const rows = [["sheet", "session", "trial", "question", "left", "right", "choice"].join(",")];
  trials.forEach((t, i) => QUESTIONS.forEach(q => {
    if (answers[i][q.name]) rows.push([SHEET, session, i + 1, q.name, t.left, t.right, answers[i][q.name]].join(","));
  }));
  return rows.join("\n") + "\n";
}
function answered() { return answers.reduce((n, a) => n + Object.keys(a).length, 0); }
function render() {
  const t = trials[current], seg = SEGMENTS[t.segment];
  document.getElementById("reference").src = seg.url;
  const left = document.getElementById("left"), right = document.getElementById("right");
  left.src = urls[t.left]; right.src = urls[t.right];
  left.dataset.clip = t.left; right.dataset.clip = t.right;
  for (const v of document.querySelectorAll("video")) { v.currentTime = 0; v.play().catch(() => {}); }
  document.getElementById("stretch").textContent = `${seg.seconds[0]}–${seg.seconds[1]} s of the video`;
  for (const b of document.querySelectorAll("button.choice"))
    b.classList.toggle("chosen", answers[current][b.dataset.question] === b.dataset.choice);
  const total = trials.length * QUESTIONS.length;
  document.getElementById("progress").textContent =
    `Pair ${current + 1} of ${trials.length} · ${answered()} of ${total} answers given`;
  document.getElementById("previous").disabled = current === 0;
  document.getElementById("next").disabled = current === trials.length - 1;
  document.getElementById("done").hidden = answered() < total;
  document.getElementById("download").disabled = answered() === 0;
}
function download() {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([csvText()], {type: "text/csv"}));
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  a.download = `answers-${SHEET}-${stamp}.csv`;
  document.body.appendChild(a); a.click(); a.remove();
  document.getElementById("saved").textContent = `Saved ${answered()} answers as ${a.download}.`;
}
function build() {
  const box = document.getElementById("questions");
  for (const q of QUESTIONS) {
    const div = document.createElement("div"); div.className = "question";
    div.innerHTML = `<p><b>${q.title}.</b> ${q.text}</p>`;
    for (const c of ["left", "same", "right"]) {
      const b = document.createElement("button");
      b.className = "choice"; b.dataset.question = q.name; b.dataset.choice = c; b.textContent = CHOICE_TEXT[c];
      b.id = `${q.name}-${c}`;
      b.onclick = () => { answers[current][q.name] = c; render(); };
      div.appendChild(b);
    }
    box.appendChild(div);
  }
  document.getElementById("previous").onclick = () => { current--; render(); };
  document.getElementById("next").onclick = () => { current++; render(); };
  document.getElementById("download").onclick = download;
  render();
}
build();
