// The campaign form's audience in the admin: whenever the segment (or the
// contact frequency) chosen changes, asks the admin's audience view again and
// shows whom the campaign would invite and who is left out, and why.
(function () {
  "use strict";

  function render(box, data) {
    var count = box.querySelector(".audience-count");
    var list = box.querySelector(".audience-excluded");
    count.textContent = data.text || data.detail || "";
    list.textContent = "";
    (data.excluded_reasons || []).forEach(function (reason) {
      var item = document.createElement("li");
      item.textContent = reason.label + ": " + reason.count;
      list.appendChild(item);
    });
  }

  function update(box) {
    var params = new URLSearchParams();
    var segment = document.getElementById("id_segment");
    var days = document.getElementById("id_contact_frequency_days");
    if (segment) params.set("segment", segment.value);
    if (days) params.set("contact_frequency_days", days.value);
    box.setAttribute("aria-busy", "true");
    fetch(box.dataset.url + "?" + params.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (data) {
        render(box, data);
      })
      .finally(function () {
        box.removeAttribute("aria-busy");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("audience-preview");
    if (!box) return;
    ["id_segment", "id_contact_frequency_days"].forEach(function (id) {
      var field = document.getElementById(id);
      if (field) field.addEventListener("change", function () { update(box); });
    });
  });
})();
