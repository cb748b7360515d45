// A link to the other edition of this page, in the menu bar: the English
// book is at the root, the Chinese one under zh-CN/ (TRANSLATING.md). Both
// editions have the same pages and the same heading ids, so the link keeps
// the page and the section (#fragment) the reader is at.
(function () {
    "use strict";
    const chinese = document.documentElement.lang === "zh-CN";
    // path_to_root is mdBook's own constant: this edition's root, relative
    // ("" on a page at the root, "../" one folder down).
    const root = new URL(path_to_root || "./", window.location.href).href;
    const other = () => {
        const here = window.location.href.slice(root.length);
        return new URL((chinese ? "../" : "zh-CN/") + here, root).href;
    };
    const link = document.createElement("a");
    link.id = "language-link";
    link.href = other();
    link.textContent = chinese ? "English" : "中文";
    link.title = chinese ? "Read this page in English" : "阅读本页的中文版";
    link.lang = chinese ? "en" : "zh-CN";
    // The fragment changes as the reader follows links within the page.
    link.addEventListener("click", () => { link.href = other(); });
    const buttons = document.querySelector(".right-buttons");
    if (buttons) {
        buttons.prepend(link);
    }
})();
