"""The page: the one jinja2 environment, the view that turns image indices into tiles, and the HTML itself."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2

from ..cache import load_memo, save_memo
from ..explain.overlay import Overlays
from ..fsutil import template_dir
from ..run import Run
from .budget import Budget, Thumbs
from .sections import Section, applicable, partial_source


class _Loader(jinja2.BaseLoader):
    """The package's templates, and the partials of sections registered from outside the package."""

    def __init__(self) -> None:
        self.package = jinja2.FileSystemLoader(template_dir())

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        outside = partial_source(template)
        if outside is not None:
            return outside.read_text(encoding="utf-8"), str(outside), lambda: False
        return self.package.get_source(environment, template)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one jinja2 environment: autoescaped, trimmed, with the report's filters."""
    env = jinja2.Environment(
        loader=_Loader(),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v: f"{v:.0%}"
    env.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{v:.{digits}f}"
    env.filters["middle"] = shorten_middle
    env.filters["filename"] = lambda path: str(path).rsplit("/", 1)[-1]
    return env


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters in the middle (``renewable/wi…dmill15.jpg``): the folder's start and the
    file's end, which tell names apart, both stay."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail :]


class Page:
    """What the templates read besides the Run: tiles (thumbnails at the budget's size) and figures."""

    def __init__(
        self, run: Run, budget: Budget, thumbs: Thumbs, sections: list[Section], overlays: Overlays | None = None
    ) -> None:
        self.run = run
        self.budget = budget
        self.thumbs = thumbs
        self.sections = sections
        self.overlays = overlays if budget.overlays else None

    def tile(self, i: int, views: tuple[str, ...] = ()) -> dict[str, Any]:
        """Image ``i`` as a montage tile; ``views``: the kinds of map it can switch to (those it has, when it has the
        last, its role's own)."""
        images = self.run.images
        shown = self.run.explanations.views(i, views) if self.overlays is not None else []
        if views and all(v.kind != views[-1] for v in shown):
            shown = []  # the map of its role here (its cluster, class or sub-cluster) is what the tile is about
        return {
            "views": [(v.kind, v.label) for v in shown],
            "i": i,
            "src": self.thumbs.uri(i, self.budget.tile_px),
            "path": images.path[i],
            "label": images.label[i] or None,
            "cluster": int(images.cluster[i]),
            "top1": images.top1_class[i],
        }

    def tiles(self, indices: object, views: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return [self.tile(int(i), views) for i in indices]  # type: ignore[attr-defined]

    def figure(self, name: str, *args: object) -> str:
        """``figures.<name>(*args)``, memoised in the cache folder so an unchanged rerun never imports matplotlib.

        The key covers the arguments, the source of figures.py and matplotlib's version.
        """
        config = self.run.config
        source = Path(__file__).with_name("figures.py").read_bytes()
        digest = hashlib.blake2b(source, digest_size=20)
        digest.update(repr((name, args, metadata.version("matplotlib"))).encode())
        key = digest.hexdigest()
        if config.use_cache:
            memo = load_memo(config.resolved_cache_dir, "figures", key)
            if memo and isinstance(memo.get("uri"), str):
                return memo["uri"]
        from . import figures

        uri = getattr(figures, name)(*args)
        if config.use_cache:
            save_memo(config.resolved_cache_dir, "figures", key, {"uri": uri})
        return uri

    def _maps(self, i: int) -> dict[str, str]:
        """Image ``i``'s overlays by kind, at the tiles' size."""
        assert self.overlays is not None
        return {kind: self.overlays.uri(i, kind, self.budget.tile_px) for kind in self.run.explanations.maps[i]}

    def data(self) -> dict[str, Any]:
        """What the map and the image viewer read, as one JSON-ready dict (per image shown, by index)."""
        run, budget = self.run, self.budget
        images, layout = run.images, run.layout
        hover = set(budget.hover_indices)
        tsne_pos = {int(i): j for j, i in enumerate(layout.tsne_indices)}
        points = []
        for i in budget.map_indices:
            j = tsne_pos.get(int(i))
            points.append(
                [
                    int(i),
                    round(float(layout.pca[i, 0]), 4),
                    round(float(layout.pca[i, 1]), 4),
                    None if j is None else round(float(layout.tsne[j, 0]), 3),
                    None if j is None else round(float(layout.tsne[j, 1]), 3),
                ]
            )
        shown = set(budget.map_indices) | {i for s in self.sections for i in s.images(run)}
        details = {
            str(i): {
                "p": images.path[i],
                "l": images.label[i] or None,
                "c": int(images.cluster[i]),
                "t": [[name, round(p, 3)] for name, p in images.top_predictions(i)],
                "o": bool(images.is_oddball[i]),
                "h": self.thumbs.uri(i, budget.hover_px) if i in hover else None,
                **({"m": self._maps(i)} if self.overlays is not None and i in run.explanations.maps else {}),
            }
            for i in sorted(shown)
        }
        return {
            "points": points,
            "images": details,
            "classes": list(run.dataset.classes),
            "clusters": [[c.cluster, c.name] for c in run.analysis.clusters],  # id and name, largest first (-1 last)
            "has_tsne": layout.tsne is not None,
        }


def render_html(run: Run, budget: Budget, thumbs: Thumbs, overlays: Overlays | None = None) -> str:
    """The report page of ``run`` with the thumbnails, overlays and hover subset of ``budget``."""
    sections = applicable(run)
    page = Page(run, budget, thumbs, sections, overlays)
    folder = template_dir()
    return (
        environment()
        .get_template("report.html")
        .render(
            run=run,
            report=budget,
            page=page,
            sections=[(s, s.context(run, page)) for s in sections],
            data=page.data(),
            css=(folder / "report.css").read_text(encoding="utf-8"),
            js=(folder / "report.js").read_text(encoding="utf-8"),
        )
    )
