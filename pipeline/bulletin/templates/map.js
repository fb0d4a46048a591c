/* Interactive maps of the bulletin (after the vendored Leaflet 1.9.4). Each
   <div class="leaflet-box" data-map="JSON"> gets a map: before/after composites as image
   overlays (no tiles, nothing fetched), site outlines with pop-ups. Input-derived text is
   only ever written with textContent; layer names (which Leaflet writes as HTML) are escaped. */
(function () {
  "use strict";
  if (typeof L === "undefined") { return; }
  function esc(text) {
    var span = document.createElement("span");
    span.textContent = String(text);
    return span.innerHTML;
  }
  function popup(props, words) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = props.site_id;
    box.appendChild(title);
    var rows = [["status", props.status], ["area", props.area_ha], ["first", props.first_seen],
                ["last", props.last_seen]];
    if (props.verdict) { rows.push(["verdict", props.verdict]); }
    var list = document.createElement("dl");
    list.className = "popup";
    rows.forEach(function (row) {
      var dt = document.createElement("dt");
      dt.textContent = words[row[0]];
      var dd = document.createElement("dd");
      dd.textContent = row[1];
      list.appendChild(dt);
      list.appendChild(dd);
    });
    box.appendChild(list);
    return box;
  }
  var boxes = document.querySelectorAll(".leaflet-box[data-map]");
  Array.prototype.forEach.call(boxes, function (el) {
    var data;
    try { data = JSON.parse(el.getAttribute("data-map")); } catch (e) { return; }
    var bounds = L.latLngBounds(data.bounds);
    var map = L.map(el, { attributionControl: false, zoomSnap: 0.25, maxBounds: bounds.pad(0.5) });
    var base = {};
    var last = null;
    data.layers.forEach(function (layer) {
      last = L.imageOverlay(layer.src, bounds, { alt: layer.name });
      base[esc(layer.name)] = last;
    });
    if (last) { last.addTo(map); }  /* the "after" composite first, as in the static map */
    var sites = L.geoJSON(data.sites, {
      style: function (f) { return { color: f.properties.colour, weight: 2, fill: true, fillOpacity: 0.05 }; },
      onEachFeature: function (f, layer) { layer.bindPopup(popup(f.properties, data.words)); }
    }).addTo(map);
    var overlays = {};
    overlays[esc(data.words.sites)] = sites;
    L.control.layers(base, overlays, { collapsed: false }).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    map.fitBounds(bounds);
  });
})();
