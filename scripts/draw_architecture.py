"""Draw the package structure as rooms and arrows: one room per package of src/face2anime, arrows = imports.

Reads a source tree (the working tree, or `--rev REV` of git) with `ast` only (nothing is imported, so an
old revision with other packages works): each package of src/face2anime is a room labelled with its
modules and line counts, the top-level modules share one "core" room at the bottom, stages/ is one room at
the top. Rooms sit in rows by layer (`face2anime.LAYERS` read from that tree's __init__.py); an arrow
from room A to room B counts the distinct (module of A, module of B) imports, function-level imports
included; an arrow from "stages" counts the stage scripts that import the room. Arrows run in the gaps
between rows ("channels") and between columns ("lanes"), never through a room.

    python scripts/draw_architecture.py -o docs/architecture_after.png
    python scripts/draw_architecture.py --rev e8fdccc -o docs/architecture_before.png
    python scripts/draw_architecture.py --table        # stage -> rooms, as markdown (for docs/architecture.md)
"""

from __future__ import annotations

import argparse
import ast
import itertools
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "face2anime"
CORE, STAGES = "core", "stages"
# fixed arrow colours for the rooms of the trees drawn so far (a room has the same colour in every picture;
# data and detect only exist before issue 24, anime and photos only after); other rooms get a palette's
KNOWN_COLOURS = {"stages": "#1f77b4", "convert": "#ff7f0e", "demo": "#2ca02c", "gan": "#d62728", "dan": "#9467bd",
                 "metrics": "#8c564b", "anime": "#e377c2", "photos": "#7f7f7f", "viz": "#bcbd22",
                 "landmarks": "#17becf", "imaging": "#1b9e77", "data": "#e7298a", "detect": "#555555"}

# ---------------------------------------------------------------- reading a tree


def read_layers(src: Path) -> dict[str, int]:
    """`LAYERS` of that tree's face2anime/__init__.py (a literal dict), read with ast."""
    init = src / PACKAGE / "__init__.py"
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LAYERS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"no LAYERS in {init}")


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str | None) -> set[str]:
    """Every face2anime name the file imports (anywhere, functions included), as dotted names."""
    is_package = path.name == "__init__.py"
    here = (module or "").split(".") if module else []
    if module and not is_package:
        here = here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def resolve(name: str, src: Path) -> str:
    """The module an imported name lives in: 'face2anime.gan.losses.luma' -> 'face2anime.gan.losses'."""
    parts = name.split(".")
    while len(parts) > 1:
        p = src.joinpath(*parts)
        if p.with_suffix(".py").is_file() or (p / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return PACKAGE


def room_of(module: str, layers: dict[str, int]) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in layers else CORE


@dataclass
class Tree:
    """What a source tree says: rooms' modules and sizes, imports between rooms, the rooms each stage imports."""

    layers: dict[str, int]
    modules: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))  # room -> listed
    lines: dict[str, int] = field(default_factory=lambda: defaultdict(int))                       # room -> lines
    edges: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))           # (room, room) -> n
    stage_rooms: dict[str, set[str]] = field(default_factory=dict)                                # stage -> rooms
    stage_lines: dict[str, int] = field(default_factory=dict)

    def layer(self, room: str) -> int:
        return {CORE: 0, STAGES: max(self.layers.values()) + 1}.get(room, self.layers.get(room, 0))


def read_tree(root: Path) -> Tree:
    src = root / "src"
    tree = Tree(read_layers(src))
    pairs = set()
    for path in sorted((src / PACKAGE).rglob("*.py")):
        module = module_name(path, src)
        room = room_of(module, tree.layers)
        n = len(path.read_text().splitlines())
        tree.lines[room] += n
        rel = path.relative_to(src / PACKAGE).with_suffix("")
        parts = rel.parts[1:] if room != CORE else rel.parts
        label = "/".join(parts)
        if not (label.endswith("__init__") and n <= 2 and room != CORE):  # a bare package marker is not listed
            tree.modules[room].append((label, n))
        for name in imports_of(path, module):
            target = resolve(name, src)
            if room_of(target, tree.layers) != room:
                pairs.add((module, target))
    for a, b in pairs:
        tree.edges[(room_of(a, tree.layers), room_of(b, tree.layers))] += 1
    for room in tree.layers:
        tree.modules.setdefault(room, [])
    for path in sorted((root / "stages").glob("*.py")):
        tree.stage_lines[path.stem] = len(path.read_text().splitlines())
        tree.stage_rooms[path.stem] = {room_of(resolve(n, src), tree.layers) for n in imports_of(path, None)}
    return tree


def checkout(rev: str, into: Path) -> Path:
    """`git archive REV src stages | tar -x` into a folder; returns the folder."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src", "stages"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


# ---------------------------------------------------------------- layout
SP = 0.13          # inches between parallel arrow tracks
COL_W = 5.6        # room (column) width, inches
LEFT = 0.95        # left margin for the layer labels
LABEL_GAP = 0.42   # top of each channel: room for the count labels under the rooms
ENTRY_GAP = 0.32   # bottom of each channel: the arrowheads' last stretch
MONO_W = 0.0665    # width of one monospace character at 8 pt, inches
LINE_H = 0.155     # one text line at 8 pt, inches


@dataclass
class Room:
    name: str
    row: int
    col: int | None = None    # None: spans the whole width (stages, core)
    x0: float = 0.0
    x1: float = 0.0
    y0: float = 0.0
    y1: float = 0.0
    text_cols: int = 1
    height: float = 0.0


@dataclass
class Edge:
    src: str
    dst: str
    count: int
    kind: str = ""            # adjacent | lane | lane_core
    lane: int = 0
    lane_track: int = 0
    x_src: float = 0.0
    x_dst: float = 0.0
    x_lane: float = 0.0
    y_first: float = 0.0
    y_last: float = 0.0
    tracks: dict = field(default_factory=dict)   # channel -> track index


def _items(tree: Tree, name: str) -> list[str]:
    if name == STAGES:
        return [f"{s:<19}{n:>4}" for s, n in tree.stage_lines.items()]
    mods = tree.modules[name]
    width = max((len(m) for m, _ in mods), default=4) + 1
    return [f"{m:<{width}}{n:>4}" for m, n in mods]


def _grid(n_items: int, item_chars: int, width: float) -> tuple[int, int]:
    cols = max(1, min(n_items, int((width - 0.3) // ((item_chars + 3) * MONO_W))))
    return cols, -(-n_items // cols) if n_items else 0


def layout(tree: Tree):
    rooms_by_layer = defaultdict(list)
    for r in tree.layers:
        rooms_by_layer[tree.layers[r]].append(r)
    rows = [[STAGES]] + [sorted(rooms_by_layer[k]) for k in sorted(rooms_by_layer, reverse=True)] + [[CORE]]
    n_cols = max(len(r) for r in rows[1:-1])
    rooms: dict[str, Room] = {}
    for i, row in enumerate(rows):
        for name in row:
            rooms[name] = Room(name, i)
    edges = [Edge(a, b, n) for (a, b), n in sorted(tree.edges.items())]
    for room in sorted({r for rs in tree.stage_rooms.values() for r in rs}):
        edges.append(Edge(STAGES, room, sum(room in rs for rs in tree.stage_rooms.values())))
    up = [e for e in edges if rooms[e.dst].row <= rooms[e.src].row]
    if up:
        print("warning: imports against the layers (not drawn): " + ", ".join(f"{e.src}->{e.dst}" for e in up),
              file=sys.stderr)
    edges = [e for e in edges if rooms[e.dst].row > rooms[e.src].row]

    # columns: per row, the placement (of the row's rooms in n_cols slots) with the shortest arrows to the rows
    # already placed above; a few sweeps down and up
    def cost(name, col):
        total = 0.0
        for e in edges:
            other = e.dst if e.src == name else e.src if e.dst == name else None
            if other is not None and rooms[other].col is not None:
                total += e.count * abs(rooms[other].col - col)
            elif other is not None:
                total += 0.2 * e.count * abs(col - (n_cols - 1) / 2)
        return total
    for sweep in range(4):
        order = range(1, len(rows) - 1) if sweep % 2 == 0 else range(len(rows) - 2, 0, -1)
        for i in order:
            best = min(itertools.permutations(range(n_cols), len(rows[i])),
                       key=lambda cols: (sum(cost(n, c) for n, c in zip(rows[i], cols)), cols))
            for name, c in zip(rows[i], best):
                rooms[name].col = c

    # routing topology: adjacent rows through one channel, others down a lane between columns
    lane_use: dict[int, list[Edge]] = defaultdict(list)
    for e in sorted(edges, key=lambda e: rooms[e.dst].row - rooms[e.src].row):
        a, b = rooms[e.src], rooms[e.dst]
        if b.row == a.row + 1:
            e.kind = "adjacent"
            continue
        e.kind = "lane_core" if b.col is None else "lane"
        ca = a.col if a.col is not None else b.col
        cb = b.col if b.col is not None else ca
        if ca is None:  # stages -> core: the right-hand outer lane
            ca = cb = n_cols - 1
        lo, hi = min(ca, cb), max(ca, cb) + 1

        def load(k, a=a, b=b):
            return sum(1 for o in lane_use[k] if rooms[o.src].row < b.row and a.row < rooms[o.dst].row)
        e.lane = min(range(lo, hi + 1), key=lambda k: (abs(k - ca - 0.5) + abs(k - cb - 0.5) + 0.25 * load(k), k))
        lane_use[e.lane].append(e)
    # lane tracks: interval colouring over the channels each lane edge passes
    lane_tracks = {}
    for k, es in lane_use.items():
        taken: list[list[tuple[int, int]]] = []
        for e in sorted(es, key=lambda e: (rooms[e.src].row, -rooms[e.dst].row)):
            span = (rooms[e.src].row, rooms[e.dst].row - 1)
            for t, spans in enumerate(taken):
                if all(span[1] < s[0] or s[1] < span[0] for s in spans):
                    spans.append(span)
                    e.lane_track = t
                    break
            else:
                taken.append([span])
                e.lane_track = len(taken) - 1
        lane_tracks[k] = len(taken)
    lane_w = [max(0.45, (lane_tracks.get(k, 0) + 1) * SP + 0.1) for k in range(n_cols + 1)]
    lane_x0, col_x0, x = [], [], LEFT
    for k in range(n_cols + 1):
        lane_x0.append(x)
        x += lane_w[k]
        if k < n_cols:
            col_x0.append(x)
            x += COL_W
    width = x + 0.3
    for r in rooms.values():
        if r.col is None:
            r.x0, r.x1 = lane_x0[0], lane_x0[-1] + lane_w[-1]
        else:
            r.x0, r.x1 = col_x0[r.col], col_x0[r.col] + COL_W
        items = _items(tree, r.name)
        r.text_cols, n_lines = _grid(len(items), max((len(s) for s in items), default=0), r.x1 - r.x0)
        r.height = 0.42 + n_lines * LINE_H + 0.12
    for e in edges:
        if e.kind != "adjacent":
            k = e.lane
            e.x_lane = lane_x0[k] + (lane_w[k] - lane_tracks[k] * SP) / 2 + (e.lane_track + 0.5) * SP

    # ports: outgoing arrows leave a room's bottom, incoming ones enter its top, spread and ordered by direction
    def centre(name):
        return (rooms[name].x0 + rooms[name].x1) / 2
    for name, r in rooms.items():
        out = [e for e in edges if e.src == name]
        out.sort(key=lambda e: (e.x_lane if e.kind != "adjacent" else centre(e.dst), -rooms[e.dst].row))
        for i, e in enumerate(out):
            e.x_src = r.x0 + (r.x1 - r.x0) * (i + 1) / (len(out) + 1)
    for name, r in rooms.items():
        inc = [e for e in edges if e.dst == name]
        if r.col is None:   # core: lanes run straight in, the row above comes straight down
            for e in inc:
                e.x_dst = e.x_lane if e.kind == "lane_core" else e.x_src
            continue
        inc.sort(key=lambda e: e.x_lane if e.kind == "lane" else e.x_src)
        for i, e in enumerate(inc):
            # a slightly different spread than the bottoms, so an arrow in never lines up with one out
            e.x_dst = r.x0 + (r.x1 - r.x0) * (i + 0.75) / (len(inc) + 0.5)
    # channel tracks: horizontal runs in the gap under row c
    runs = defaultdict(list)   # channel -> (x0, x1, edge, which)
    for e in edges:
        a, b = rooms[e.src], rooms[e.dst]
        if e.kind == "adjacent":
            if abs(e.x_src - e.x_dst) > 1e-6:
                runs[a.row].append((min(e.x_src, e.x_dst), max(e.x_src, e.x_dst), e, "first"))
        else:
            runs[a.row].append((min(e.x_src, e.x_lane), max(e.x_src, e.x_lane), e, "first"))
            if e.kind == "lane":
                runs[b.row - 1].append((min(e.x_lane, e.x_dst), max(e.x_lane, e.x_dst), e, "last"))
    channel_tracks = {}
    for c, rs in runs.items():
        taken = []
        # runs that start their trip (under a room) above the ones that end it (over a room): fewer crossings
        for x0, x1, e, which in sorted(rs, key=lambda r: (r[3] == "last", r[0])):
            for t, spans in enumerate(taken):
                if all(x1 + 0.08 < s0 or s1 + 0.08 < x0 for s0, s1 in spans):
                    spans.append((x0, x1))
                    e.tracks[(c, which)] = t
                    break
            else:
                taken.append([(x0, x1)])
                e.tracks[(c, which)] = len(taken) - 1
        channel_tracks[c] = len(taken)
    y = 1.15   # title
    row_y = []
    for i, row in enumerate(rows):
        h = max(rooms[n].height for n in row)
        for n in row:
            rooms[n].y0, rooms[n].y1 = y, y + rooms[n].height
        row_y.append((y, y + h))
        y += h
        if i < len(rows) - 1:
            ch_top = y
            for e in edges:
                for (c, which), t in e.tracks.items():
                    if c == i:
                        yy = ch_top + LABEL_GAP + (t + 0.5) * SP
                        if which == "first":
                            e.y_first = yy
                        else:
                            e.y_last = yy
            y += LABEL_GAP + channel_tracks.get(i, 0) * SP + ENTRY_GAP
    height = y + 0.5
    return rows, rooms, edges, width, height, row_y


# ---------------------------------------------------------------- drawing
def draw(tree: Tree, title: str, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    rows, rooms, edges, width, height, row_y = layout(tree)
    fig = plt.figure(figsize=(width, height), dpi=110)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    palette = plt.get_cmap("Dark2").colors
    others = sorted({e.src for e in edges} - set(KNOWN_COLOURS), key=lambda n: (rooms[n].row, rooms[n].x0))
    colour = KNOWN_COLOURS | {n: palette[i % len(palette)] for i, n in enumerate(others)}
    fill = {STAGES: "#f3ecdc", CORE: "#e8e8e8"}

    ax.text(LEFT, 0.34, title, fontsize=15, fontweight="bold", va="center")
    ax.text(LEFT, 0.74, "Rooms in rows by layer (face2anime.LAYERS): a room may import only rooms below it, and core.\n"
            "Number on an arrow: distinct module -> module imports (from stages: stage scripts that import the room). "
            "Modules are listed with their line counts.", fontsize=9, va="center", color="#444444", linespacing=1.5)
    for i, (y0, y1) in enumerate(row_y):
        name = rows[i][0]
        label = "stages" if name == STAGES else "core" if name == CORE else f"layer {tree.layer(name)}"
        ax.text(0.12, (y0 + y1) / 2, label, fontsize=9, color="#777777", va="center", rotation=90)

    for name, r in rooms.items():
        ax.add_patch(FancyBboxPatch((r.x0, r.y0), r.x1 - r.x0, r.y1 - r.y0, boxstyle="round,pad=0,rounding_size=0.08",
                                    fc=fill.get(name, "#eef3fa"), ec="#555555", lw=1.2, zorder=2))
        if name == STAGES:
            head = f"stages/  ({len(tree.stage_lines)} scripts, {sum(tree.stage_lines.values()):,} lines)"
        else:
            where = "src/face2anime/*.py" if name == CORE else f"src/face2anime/{name}/"
            head = f"{name}   {where}  ({tree.lines[name]:,} lines)"
        ax.text(r.x0 + 0.12, r.y0 + 0.2, head, fontsize=10.5, fontweight="bold", va="center", zorder=3)
        items = _items(tree, name)
        cols, n_lines = _grid(len(items), max((len(s) for s in items), default=0), r.x1 - r.x0)
        col_w = (r.x1 - r.x0 - 0.24) / cols
        for j, item in enumerate(items):
            c, line = divmod(j, n_lines) if n_lines else (0, 0)
            ax.text(r.x0 + 0.12 + c * col_w, r.y0 + 0.46 + line * LINE_H, item, fontsize=8, family="monospace",
                    va="center", color="#222222", zorder=3)

    for e in edges:
        a, b = rooms[e.src], rooms[e.dst]
        if e.kind == "adjacent":
            yt = e.y_first if (a.row, "first") in e.tracks else None
            pts = [(e.x_src, a.y1)] + ([(e.x_src, yt), (e.x_dst, yt)] if yt is not None else []) + [(e.x_dst, b.y0)]
        elif e.kind == "lane_core":
            pts = [(e.x_src, a.y1), (e.x_src, e.y_first), (e.x_lane, e.y_first), (e.x_lane, b.y0)]
        else:
            pts = [(e.x_src, a.y1), (e.x_src, e.y_first), (e.x_lane, e.y_first), (e.x_lane, e.y_last),
                   (e.x_dst, e.y_last), (e.x_dst, b.y0)]
        col = colour[e.src]
        lw = 1.0 + 0.35 * min(e.count, 8) ** 0.5
        xs, ys = zip(*pts[:-1])
        ax.plot(xs, ys, color=col, lw=lw, solid_capstyle="butt", zorder=1)
        ax.add_patch(FancyArrowPatch(pts[-2], pts[-1], arrowstyle="-|>", mutation_scale=14, color=col, lw=lw,
                                     shrinkA=0, shrinkB=0, zorder=1))
        ax.text(e.x_src, a.y1 + 0.19, str(e.count), fontsize=8, fontweight="bold", color=col, ha="center",
                va="center", zorder=4, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=col, lw=0.6))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def stage_table(tree: Tree) -> str:
    order = sorted(tree.layers, key=lambda r: (-tree.layers[r], r)) + [CORE]
    lines = ["| stage | rooms it imports |", "|---|---|"]
    for stage, rs in tree.stage_rooms.items():
        lines.append(f"| {stage} | {', '.join(r for r in order if r in rs)} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="draw this git revision's tree (default: the working tree)")
    ap.add_argument("-o", "--output", type=Path, help="PNG to write")
    ap.add_argument("--title", help="title (default: names the revision)")
    ap.add_argument("--table", action="store_true", help="print stage -> rooms and room sizes as markdown")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = checkout(args.rev, Path(tmp)) if args.rev else ROOT
        tree = read_tree(root)
    if args.rev:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.rev], check=True,
                             capture_output=True, text=True).stdout.strip()
        where = f"revision {sha}"
    else:
        where = "the working tree"
    if args.table:
        print(stage_table(tree))
        print()
        print("| room | layer | lines | modules |\n|---|---|---|---|")
        for r in sorted(tree.modules, key=lambda r: (-tree.layer(r), r)):
            print(f"| {r} | {tree.layer(r)} | {tree.lines[r]} | {len(tree.modules[r])} |")
    if args.output:
        draw(tree, args.title or f"face2anime structure: {where}", args.output)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
