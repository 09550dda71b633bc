// demvae report: sorting (click a column header: ascending, then descending) and the sentence search;
// plain DOM code, inlined into the page by html.py
for (const th of document.querySelectorAll('th.sort')) {
  const sort = () => {
    const table = th.closest('table'), col = th.cellIndex, body = table.tBodies[0];
    const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    for (const other of table.querySelectorAll('th')) other.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    // numbers by value (a missing one, with no data-v, last); text in natural order ("2-10" after "2-9")
    const num = th.dataset.type === 'num';
    const key = row => { const c = row.cells[col]; return num ? parseFloat(c.dataset.v ?? 'NaN') : c.textContent; };
    const cmp = (x, y) => num ? (isNaN(x) ? (isNaN(y) ? 0 : 1) : isNaN(y) ? -1 : dir * (x - y))
      : dir * x.localeCompare(y, undefined, {numeric: true});
    const rows = [...body.rows].sort((a, b) => cmp(key(a), key(b)));
    body.append(...rows);
  };
  th.addEventListener('click', sort);
  th.addEventListener('keydown', e => { if (e.key === 'Enter') sort(); });
}
const esc = s => s.replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[c]);
for (const input of document.querySelectorAll('.search input')) {
  const table = document.getElementById(input.dataset.table);
  const count = document.querySelector(`.count[data-for="${input.dataset.table}"]`);
  for (const li of table.querySelectorAll('.sent')) li.dataset.text = li.textContent;
  const filter = () => {
    const q = input.value.trim().toLowerCase();
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      let hit = !q;
      for (const li of row.querySelectorAll('.sent')) {
        const text = li.dataset.text, at = q ? text.toLowerCase().indexOf(q) : -1;
        li.innerHTML = at < 0 ? esc(text) : esc(text.slice(0, at)) + '<mark>' + esc(text.slice(at, at + q.length))
          + '</mark>' + esc(text.slice(at + q.length));
        hit = hit || at >= 0;
      }
      row.hidden = !hit;
      shown += hit;
    }
    count.textContent = q ? `${shown} of ${table.tBodies[0].rows.length} codes` : '';
  };
  input.addEventListener('input', filter);
}
