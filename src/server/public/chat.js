// The chat page's client: no build step, no network beyond this server. Streams /v1/chat/completions (SSE).
// Conversations live in localStorage ('llama4-chats'); each holds its system prompt and its turns:
//   { role: 'user', text, images: [dataURL], failed? }   { role: 'assistant', text, tool_calls?, meta? }
//   { role: 'tool', tool_call_id, content }               { role: 'error', text }
// A failed request leaves its user turn marked `failed` and an error turn: both are shown, neither is sent again,
// so one bad request (an image to a text-only model, …) does not break the conversation.
// Markdown: marked → DOMPurify (no images, forms or styles from the model) → innerHTML.
import { marked } from '/vendor/marked.js';
import DOMPurify from '/vendor/purify.js';

const $ = (id) => document.getElementById(id);
const STORE = 'llama4-chats';
const SETTINGS = 'llama4-settings';
const CURRENT = 'llama4-current';
const SAMPLING = [
  ['temperature', 'temperature'],
  ['top_p', 'top_p'],
  ['top_k', 'top_k'],
  ['min_p', 'min_p'],
  ['max', 'max_tokens'],
  ['seed', 'seed'],
];
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

let config = { model: null, vision: false, defaults: { temperature: 1, top_p: 1, top_k: 0, min_p: 0, max_tokens: 512 } };
let chats = readJson(STORE, []);
let current = null;
let pendingImages = [];
let controller = null;

function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function setStatus(text) {
  $('status').textContent = text;
}

function save() {
  try {
    localStorage.setItem(STORE, JSON.stringify(chats));
    if (current) localStorage.setItem(CURRENT, current.id);
  } catch {
    setStatus('browser storage is full: older conversations or images are not saved');
  }
}

function headers() {
  const h = { 'content-type': 'application/json' };
  if ($('key').value) h.authorization = `Bearer ${$('key').value}`;
  return h;
}

// ---- markdown -----------------------------------------------------------------------------------------------
const FORBID_TAGS = [
  'img',
  'style',
  'form',
  'input',
  'button',
  'textarea',
  'select',
  'iframe',
  'video',
  'audio',
  'source',
  'picture',
  'svg',
  'math',
];
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});
function renderMarkdown(el, text) {
  const html = marked.parse(text, { gfm: true, breaks: false, async: false });
  el.innerHTML = DOMPurify.sanitize(html, { FORBID_TAGS, FORBID_ATTR: ['style'] }).trim();
}

// ---- conversations --------------------------------------------------------------------------------------------
function newChat() {
  const chat = {
    id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
    title: 'New chat',
    system: '',
    turns: [],
    updated: Date.now(),
  };
  chats.unshift(chat);
  select(chat);
}

function select(chat) {
  if (controller) controller.abort();
  current = chat;
  $('system').value = chat.system ?? '';
  pendingImages = [];
  $('preview').replaceChildren();
  save();
  renderList();
  renderTurns();
}

function renderList() {
  const ul = $('chats');
  ul.replaceChildren();
  for (const chat of chats) {
    const li = document.createElement('li');
    li.className = `chat-item${chat === current ? ' active' : ''}`;
    li.dataset.id = chat.id;
    const title = document.createElement('button');
    title.type = 'button';
    title.className = 'title';
    title.textContent = chat.title;
    title.title = chat.title;
    title.addEventListener('click', () => select(chat));
    const rename = iconButton('✎', 'Rename', () => startRename(li, chat));
    rename.classList.add('rename');
    const del = iconButton('✕', 'Delete', () => {
      chats = chats.filter((c) => c !== chat);
      if (chat === current) {
        if (chats.length) select(chats[0]);
        else newChat();
      } else {
        save();
        renderList();
      }
    });
    del.classList.add('delete');
    li.append(title, rename, del);
    ul.append(li);
  }
}

function iconButton(label, title, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'icon';
  b.textContent = label;
  b.title = title;
  b.setAttribute('aria-label', title);
  b.addEventListener('click', onClick);
  return b;
}

function startRename(li, chat) {
  const input = document.createElement('input');
  input.className = 'rename-input';
  input.value = chat.title;
  li.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (keep) => {
    if (done) return;
    done = true;
    if (keep && input.value.trim()) {
      chat.title = input.value.trim();
      save();
    }
    renderList();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      finish(true);
    }
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
}

// ---- turns ----------------------------------------------------------------------------------------------------
function renderTurns() {
  const box = $('messages');
  box.replaceChildren();
  const turns = current.turns;
  const lastAssistant = turns.findLastIndex((t) => t.role === 'assistant' || t.role === 'error');
  turns.forEach((t, i) => {
    if (t.role === 'tool') return;
    const div = bubble(t.role === 'error' ? 'error' : t.role);
    const body = div.querySelector('.text');
    if (t.role === 'assistant') {
      if (t.text) renderMarkdown(body, t.text);
      for (const c of t.tool_calls ?? []) showToolCall(div, c);
      if (t.meta) addMeta(div, t.meta);
      div.dataset.done = 'true';
    } else body.textContent = t.text;
    if (t.role === 'user') {
      for (const url of t.images ?? []) addImage(div, url);
      if (t.failed) div.classList.add('failed');
    }
    const actions = document.createElement('div');
    actions.className = 'actions';
    if (t.role !== 'error') actions.append(textButton('Copy', 'copy', () => copyText(t.text ?? '')));
    if (t.role === 'user') actions.append(textButton('Edit', 'edit', () => startEdit(div, i)));
    if (i === lastAssistant && !controller) actions.append(textButton('Regenerate', 'regenerate', () => regenerate()));
    if (actions.childElementCount) div.append(actions);
  });
  box.scrollTop = box.scrollHeight;
}

function bubble(role) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  const body = document.createElement('div');
  body.className = 'text';
  div.append(body);
  $('messages').append(div);
  return div;
}

function textButton(label, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function addImage(div, url) {
  const img = document.createElement('img');
  img.src = url;
  img.alt = 'attached image';
  div.querySelector('.text').after(img);
}

function addMeta(div, text) {
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = text;
  div.append(meta);
}

function showToolCall(div, call) {
  const t = document.createElement('div');
  t.className = 'tool-call';
  t.textContent = `🔧 ${call.function.name}(${call.function.arguments})`;
  div.append(t);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  setStatus('copied');
  setTimeout(() => {
    if ($('status').textContent === 'copied') setStatus('');
  }, 1500);
}

function startEdit(div, index) {
  if (controller) return;
  const turn = current.turns[index];
  const box = document.createElement('div');
  box.className = 'edit-box';
  const ta = document.createElement('textarea');
  ta.value = turn.text;
  const row = document.createElement('div');
  row.className = 'actions';
  row.append(
    textButton('Send', 'edit-send', () => {
      const text = ta.value.trim();
      if (!text && !(turn.images ?? []).length) return;
      current.turns = current.turns.slice(0, index);
      current.turns.push({ role: 'user', text, images: turn.images ?? [] });
      touch();
      renderTurns();
      complete();
    }),
    textButton('Cancel', 'edit-cancel', () => renderTurns()),
  );
  box.append(ta, row);
  div.replaceChildren(box);
  ta.focus();
}

function regenerate() {
  if (controller) return;
  const lastUser = current.turns.findLastIndex((t) => t.role === 'user');
  if (lastUser < 0) return;
  current.turns = current.turns.slice(0, lastUser + 1);
  delete current.turns[lastUser].failed;
  renderTurns();
  complete();
}

function touch() {
  current.updated = Date.now();
  const firstUser = current.turns.find((t) => t.role === 'user');
  if (current.title === 'New chat' && firstUser?.text) current.title = firstUser.text.slice(0, 40);
  // Most recently used first.
  chats = [current, ...chats.filter((c) => c !== current)];
  save();
  renderList();
}

/** The API messages of the conversation: failed turns and errors are left out. */
function apiMessages() {
  const out = [];
  const system = $('system').value.trim();
  if (system) out.push({ role: 'system', content: system });
  for (const t of current.turns) {
    if (t.role === 'error' || t.failed) continue;
    if (t.role === 'user') {
      const images = t.images ?? [];
      out.push({
        role: 'user',
        content: images.length
          ? [...images.map((url) => ({ type: 'image_url', image_url: { url } })), ...(t.text ? [{ type: 'text', text: t.text }] : [])]
          : t.text,
      });
    } else if (t.role === 'assistant') {
      const m = { role: 'assistant', content: t.text || null };
      if (t.tool_calls?.length) m.tool_calls = t.tool_calls;
      if (m.content === null && !m.tool_calls) continue;
      out.push(m);
    } else if (t.role === 'tool') out.push({ role: 'tool', tool_call_id: t.tool_call_id, content: t.content });
  }
  return out;
}

// ---- settings -------------------------------------------------------------------------------------------------
function applySettings(values) {
  for (const [id, key] of SAMPLING) $(id).value = values[key] ?? '';
}
function currentSettings() {
  const s = {};
  for (const [id, key] of SAMPLING) s[key] = $(id).value === '' ? null : Number($(id).value);
  return s;
}
function resetSettings() {
  applySettings({ ...config.defaults, seed: null });
  localStorage.removeItem(SETTINGS);
}

// ---- images ---------------------------------------------------------------------------------------------------
async function addFiles(files) {
  const images = [...files].filter((f) => f.type.startsWith('image/'));
  if (!images.length) return;
  if (!config.vision) {
    setStatus('this model does not take images');
    return;
  }
  for (const f of images) {
    const url = await new Promise((res, rej) => {
      const fr = new FileReader();
      fr.onload = () => res(fr.result);
      fr.onerror = rej;
      fr.readAsDataURL(f);
    });
    pendingImages.push(url);
    const img = document.createElement('img');
    img.src = url;
    img.alt = f.name || 'pasted image';
    $('preview').append(img);
  }
}

// ---- requests -------------------------------------------------------------------------------------------------
async function complete() {
  const chat = current;
  const div = bubble('assistant');
  const body = div.querySelector('.text');
  controller = new AbortController();
  $('send').hidden = true;
  $('stop').hidden = false;
  setStatus('generating…');
  const s = currentSettings();
  const req = { model: config.model, messages: apiMessages(), stream: true, stream_options: { include_usage: true } };
  if (s.temperature !== null) req.temperature = s.temperature;
  if (s.top_p !== null) req.top_p = s.top_p;
  if (s.top_k !== null && s.top_k > 0) req.top_k = s.top_k;
  if (s.min_p !== null && s.min_p > 0) req.min_p = s.min_p;
  if (s.max_tokens !== null) req.max_tokens = s.max_tokens;
  if (s.seed !== null) req.seed = s.seed;
  if ($('tools').checked) req.tools = TOOLS;
  let text = '';
  const calls = [];
  let finish = null,
    usage = null,
    followUp = false,
    failure = null,
    frame = 0;
  const t0 = performance.now();
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(req),
      signal: controller.signal,
    });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error?.message ?? `HTTP ${r.status}`);
    }
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          if (j.usage) usage = j.usage;
          const ch = j.choices?.[0];
          if (!ch) continue;
          if (ch.delta?.content) {
            text += ch.delta.content;
            frame ||= requestAnimationFrame(() => {
              frame = 0;
              renderMarkdown(body, text);
              div.scrollIntoView({ block: 'end' });
            });
          }
          for (const tc of ch.delta?.tool_calls ?? []) {
            calls.push(tc);
            showToolCall(div, tc);
          }
          if (ch.finish_reason) finish = ch.finish_reason;
        }
      }
    }
  } catch (err) {
    if (err.name === 'AbortError') finish = 'stopped';
    else failure = err.message;
  } finally {
    if (frame) cancelAnimationFrame(frame);
    controller = null;
    $('send').hidden = false;
    $('stop').hidden = true;
    setStatus('');
  }
  if (failure !== null) {
    // The error is shown where the answer would be; the turn that caused it is kept but never sent again.
    const lastUser = chat.turns.findLastIndex((t) => t.role === 'user');
    if (lastUser >= 0) chat.turns[lastUser].failed = true;
    if (text) chat.turns.push({ role: 'assistant', text, meta: 'incomplete' });
    chat.turns.push({ role: 'error', text: `[error] ${failure}` });
  } else {
    const secs = (performance.now() - t0) / 1000;
    const meta = `${finish ?? ''}${usage ? ` · ${usage.completion_tokens} tokens · ${(usage.completion_tokens / secs).toFixed(1)} tok/s` : ''}`;
    const turn = { role: 'assistant', text, meta };
    if (calls.length) turn.tool_calls = calls.map(({ index, ...c }) => c);
    chat.turns.push(turn);
    // Demo tool: answer get_weather calls locally, then let the model continue.
    if (finish !== 'stopped' && calls.length && calls.every((c) => c.function.name === 'get_weather')) {
      for (const c of calls) chat.turns.push({ role: 'tool', tool_call_id: c.id, content: 'sunny, 21 °C' });
      followUp = true;
    }
  }
  chat.updated = Date.now();
  save();
  if (chat === current) renderTurns();
  if (followUp && chat === current) await complete();
}

// ---- wiring ---------------------------------------------------------------------------------------------------
$('key').value = localStorage.getItem('llama4-key') ?? '';
$('key').addEventListener('change', () => localStorage.setItem('llama4-key', $('key').value));
$('new-chat').addEventListener('click', () => newChat());
$('settings-btn').addEventListener('click', () => {
  $('settings').hidden = !$('settings').hidden;
  $('settings-btn').setAttribute('aria-expanded', String(!$('settings').hidden));
});
$('reset-settings').addEventListener('click', resetSettings);
for (const [id] of SAMPLING) $(id).addEventListener('change', () => localStorage.setItem(SETTINGS, JSON.stringify(currentSettings())));
$('system').addEventListener('change', () => {
  current.system = $('system').value;
  save();
});
$('attach-btn').addEventListener('click', () => $('attach').click());
$('attach').addEventListener('change', async () => {
  await addFiles($('attach').files);
  $('attach').value = '';
});
$('input').addEventListener('paste', (e) => {
  if (e.clipboardData?.files.length) {
    e.preventDefault();
    addFiles(e.clipboardData.files);
  }
});
$('form').addEventListener('dragover', (e) => {
  if (config.vision) {
    e.preventDefault();
    $('form').classList.add('dragging');
  }
});
$('form').addEventListener('dragleave', () => $('form').classList.remove('dragging'));
$('form').addEventListener('drop', (e) => {
  e.preventDefault();
  $('form').classList.remove('dragging');
  addFiles(e.dataTransfer?.files ?? []);
});
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    $('form').requestSubmit();
  }
});
$('stop').addEventListener('click', () => controller?.abort());
$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('input').value.trim();
  if ((!text && pendingImages.length === 0) || controller) return;
  current.system = $('system').value;
  current.turns.push({ role: 'user', text, images: pendingImages });
  $('input').value = '';
  pendingImages = [];
  $('preview').replaceChildren();
  touch();
  renderTurns();
  await complete();
});

async function loadConfig() {
  try {
    const r = await fetch('/chat-config');
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    config = await r.json();
    $('model').textContent = config.model;
  } catch (e) {
    $('model').textContent = `(${e.message})`;
  }
  $('attach-btn').hidden = !config.vision;
  const saved = readJson(SETTINGS, null);
  applySettings(saved ?? { ...config.defaults, seed: null });
}

const startId = localStorage.getItem(CURRENT);
const start = chats.find((c) => c.id === startId) ?? chats[0];
if (start) select(start);
else newChat();
loadConfig();
