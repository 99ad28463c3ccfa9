// The data-table alternative of the figure on screen (tables.js), for screen readers and keyboards:
// a statistics or overview cell is a button that opens its head. DOM built with textContent only.

export function drawTable(element, table, digits = 3) {
  const caption = document.createElement("caption");
  caption.textContent = table.caption;
  const head = document.createElement("tr");
  for (const name of table.columns) head.append(cell("th", name, "col"));
  const body = table.rows.map((row) => {
    const line = document.createElement("tr");
    row.forEach((value, k) => line.append(k === 0 ? cell("th", text(value, digits), "row") : dataCell(value, digits)));
    return line;
  });
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  tbody.append(...body);
  element.replaceChildren(caption, thead, tbody);
}

function dataCell(value, digits) {
  if (value === null || typeof value !== "object") return cell("td", text(value, digits));
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "open-head";
  button.dataset.layer = String(value.open[0]);
  button.dataset.head = String(value.open[1]);
  button.textContent = text(value.value, digits);
  button.setAttribute("aria-label", `${text(value.value, digits)}: open layer ${value.open[0]}, ${typeof value.open[1] === "number" ? `head ${value.open[1]}` : value.open[1]}`);
  td.append(button);
  return td;
}

function cell(tag, content, scope) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (scope) element.scope = scope;
  return element;
}

function text(value, digits) {
  if (value === null) return "masked";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  return String(value);
}
