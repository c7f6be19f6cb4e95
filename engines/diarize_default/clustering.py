"""How many voices, and which embedding window is whose: clustering for the default diarizer.

Without a count, the number of speakers comes from the spectrum of a nearest-neighbour
graph of the window embeddings (NME-SC: Park et al., "Auto-Tuning Spectral Clustering for
Speaker Diarization Using Normalized Maximum Eigengap", 2019). Each window keeps its p most
similar windows; the graph's Laplacian has one near-zero eigenvalue per group of windows
that barely connect to the rest, so the largest gap among the low eigenvalues gives the
count, with p chosen where that gap is clearest for the fewest neighbours. It compares the
voices of one recording with each other, where one global distance threshold cannot:
recordings differ in channel and in how far apart their voices are (the threshold that
split one two-person file merged a real two-person recording into one speaker).

The windows are then grouped by k-means on that graph's first eigenvectors (spectral
clustering): on a real two-person recording whose voices are nearly as alike as one voice's
windows, average linkage split off two outlier windows while this matched the true turns.
A distance threshold still sets the count when one is given (ElevenLabs
`diarization_threshold`, or `DALSTON_DIARIZE_THRESHOLD`): it is what such a caller asked for.
"""

from __future__ import annotations

import numpy as np

from shared.contracts import SpeakerOptions

MIN_WINDOW_S = 0.5  # windows with less speech embed too poorly to form clusters
MIN_SPEAKER_S = 2.0  # with an automatic count, a voice heard for less is an outlier, not a person
MIN_WINDOWS_TO_COUNT = 6  # fewer windows cannot show more than one voice reliably
MAX_GRAPH_WINDOWS = 600  # eigendecompositions are O(n³)
NEIGHBOUR_FRACTION = 0.25  # the largest p tried, as a fraction of the windows (NME-SC's bound)
FEWEST_NEIGHBOURS = 3  # with 2, one voice's windows fall apart into chains of look-alikes
NEIGHBOUR_STEPS = 30  # values of p tried between FEWEST_NEIGHBOURS and that bound
KMEANS_RESTARTS = 10
SAME_VOICE_SIMILARITY = 0.93
# A cluster split off is another person only when its centroid is this far from every other:
# one voice's halves score 0.90-0.97, different people of the dev set's tune split 0.55-0.87.
# Any value from 0.70 to 0.80 gives the same results on the tune split.
DISTINCT_VOICE_SIMILARITY = 0.75
DEFAULT_MAX_SPEAKERS = 8


def cluster(
    embeddings: np.ndarray, spans: list[tuple[int, int]], options: SpeakerOptions, threshold: float | None, weights: np.ndarray
) -> np.ndarray:
    """Cluster labels (0-based) per embedding window.

    `spans`: each window's frame span; `weights`: seconds of speech each one covers. Windows
    under MIN_WINDOW_S of speech embed poorly and would be outliers: the clusters are formed
    from the full windows, and the short ones join the nearest cluster afterwards.
    """
    full = weights >= MIN_WINDOW_S
    if full.sum() < 2:
        full = np.ones(len(embeddings), dtype=bool)
    units = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    labels = np.full(len(embeddings), -1)
    kept = [s for s, f in zip(spans, full) if f]
    labels[full] = _cluster(units[full], kept, options, threshold, weights[full])
    return _join_nearest(units, labels, ~full)


def _cluster(
    units: np.ndarray, spans: list[tuple[int, int]], options: SpeakerOptions, threshold: float | None, weights: np.ndarray
) -> np.ndarray:
    n = len(units)
    if n == 1:
        return np.zeros(1, dtype=int)
    if n < MIN_WINDOWS_TO_COUNT:
        return _few_windows(units, options, threshold)
    lowest = options.min_speakers or 1
    highest = min(options.max_speakers or max(DEFAULT_MAX_SPEAKERS, lowest), n)
    # Past MAX_GRAPH_WINDOWS the graph is built on an even subsample; the rest join its clusters.
    sample = np.linspace(0, n - 1, min(n, MAX_GRAPH_WINDOWS)).round().astype(int)
    graph, estimated = neighbour_graph(units[sample], [spans[i] for i in sample], highest)
    if options.num_speakers:
        count = min(options.num_speakers, len(sample))
    elif threshold is not None:
        count = min(max(len(set(_tree_labels(units, threshold=threshold))), lowest), highest)
    else:
        count = min(max(estimated, lowest), highest)
    labels = np.full(n, -1)
    labels[sample] = spectral_labels(graph, count)
    if not options.num_speakers and threshold is None:
        labels[sample] = _split_distinct(units[sample], labels[sample], graph, weights[sample], highest=highest)
    labels = _join_nearest(units, labels, labels == -1)
    if options.num_speakers:
        return labels
    return _absorb_small(units, _merge_alike(units, labels, keep=lowest), weights, keep=lowest)


def _few_windows(units: np.ndarray, options: SpeakerOptions, threshold: float | None) -> np.ndarray:
    """Too few windows for a graph (a few seconds of speech): one voice unless a count or a
    threshold is given."""
    if options.num_speakers:
        return _tree_labels(units, count=min(options.num_speakers, len(units)))
    if threshold is not None:
        return _tree_labels(units, threshold=threshold)
    return np.zeros(len(units), dtype=int)


def _tree_labels(units: np.ndarray, *, count: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Average-linkage agglomerative clustering on cosine distance, cut at a count or a distance."""
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(units, "average", metric="cosine")
    if count is not None:
        return fcluster(tree, count, "maxclust") - 1
    return fcluster(tree, threshold, "distance") - 1


def neighbour_graph(units: np.ndarray, spans: list[tuple[int, int]], highest: int) -> tuple[np.ndarray, int]:
    """NME-SC: of the p-nearest-neighbour graphs, the one whose normalized maximum eigengap is
    clearest for the fewest neighbours, and the speaker count that gap gives (at most `highest`)."""
    from scipy.linalg import eigh

    n = len(units)
    starts = np.array([a for a, _ in spans])
    ends = np.array([b for _, b in spans])
    # Windows sharing audio are alike whoever speaks: they may not be each other's neighbours.
    overlapping = (starts[:, None] < ends[None, :]) & (starts[None, :] < ends[:, None])
    order = np.argsort(-np.where(overlapping, -np.inf, units @ units.T), axis=1)
    fewest = min(FEWEST_NEIGHBOURS, n - 1)
    largest = max(int(n * NEIGHBOUR_FRACTION), fewest)
    best: tuple[float, np.ndarray, int] | None = None
    for p in sorted({int(p) for p in np.linspace(fewest, largest, NEIGHBOUR_STEPS).round()}):
        graph = np.zeros((n, n))
        np.put_along_axis(graph, order[:, :p], 1.0, axis=1)
        graph = (graph + graph.T) / 2
        eigenvalues = eigh(_laplacian(graph), eigvals_only=True)
        gaps = np.diff(eigenvalues[: max(highest, 1) + 1])
        ratio = (p / n) / max(gaps.max() / max(eigenvalues[-1], 1e-10), 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, graph, int(gaps.argmax()) + 1 if highest >= 2 else 1)
    assert best is not None
    return best[1], best[2]


def spectral_labels(graph: np.ndarray, count: int) -> np.ndarray:
    """`count` clusters: k-means on the graph Laplacian's first `count` eigenvectors."""
    from scipy.cluster.vq import kmeans2
    from scipy.linalg import eigh

    if count <= 1:
        return np.zeros(len(graph), dtype=int)
    _, vectors = eigh(_laplacian(graph), subset_by_index=[0, count - 1])
    best: tuple[float, np.ndarray] | None = None
    for seed in range(KMEANS_RESTARTS):
        centroids, labels = kmeans2(vectors, count, seed=seed, minit="++")
        inertia = float(((vectors - centroids[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels)
    assert best is not None
    remap = {c: i for i, c in enumerate(sorted(set(best[1])))}
    return np.array([remap[c] for c in best[1]])


def _laplacian(graph: np.ndarray) -> np.ndarray:
    return np.diag(graph.sum(axis=1)) - graph


def _absorb_small(units: np.ndarray, labels: np.ndarray, weights: np.ndarray, *, keep: int) -> np.ndarray:
    """A cluster holding under MIN_SPEAKER_S of speech gives its windows to the nearest other cluster."""
    labels = labels.copy()
    while True:
        sizes = {c: weights[labels == c].sum() for c in set(labels)}
        small = min(sizes, key=sizes.__getitem__)
        if sizes[small] >= MIN_SPEAKER_S or len(sizes) <= keep:
            break
        labels[labels == small] = -1
        labels = _join_nearest(units, labels, labels == -1)
    remap = {c: i for i, c in enumerate(sorted(set(labels)))}
    return np.array([remap[c] for c in labels])


def _split_distinct(units: np.ndarray, labels: np.ndarray, graph: np.ndarray, weights: np.ndarray, *, highest: int) -> np.ndarray:
    """One more cluster while it is a voice unlike all the others.

    The eigengap misses a voice heard for a few seconds among long ones: its windows are fewer
    than the neighbours each window keeps, so the graph ties them to another voice (a third
    speaker with 6 of 86 windows was merged). A split is kept when every cluster holds
    MIN_SPEAKER_S of speech and no two centroids are as alike as DISTINCT_VOICE_SIMILARITY."""
    count = len(set(labels))
    while count < highest:
        more = spectral_labels(graph, count + 1)
        if (
            min(weights[more == c].sum() for c in set(more)) < MIN_SPEAKER_S
            or _closest_pair(units, more) >= DISTINCT_VOICE_SIMILARITY
        ):
            break
        labels, count = more, count + 1
    return labels


def _closest_pair(units: np.ndarray, labels: np.ndarray) -> float:
    """The highest cosine similarity between two clusters' centroids."""
    clusters = sorted(set(labels))
    centroids = np.stack([units[labels == c].mean(axis=0) for c in clusters])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return float((centroids @ centroids.T - 2 * np.eye(len(clusters))).max())


def _merge_alike(units: np.ndarray, labels: np.ndarray, *, keep: int) -> np.ndarray:
    """Clusters whose centroids are as alike as one voice's halves are one voice: merged.

    The eigengap can still cut one voice in two when its windows differ by what is said (one
    synthetic voice of the single-speaker fixtures was); one voice's halves score 0.90-0.97,
    while the closest two people of the dev set score 0.87 (two women on one phone line)."""
    labels = labels.copy()
    while len(set(labels)) > keep:
        clusters = sorted(set(labels))
        centroids = np.stack([units[labels == c].mean(axis=0) for c in clusters])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        similarity = centroids @ centroids.T - 2 * np.eye(len(clusters))
        i, j = np.unravel_index(similarity.argmax(), similarity.shape)
        if similarity[i, j] < SAME_VOICE_SIMILARITY:
            break
        labels[labels == clusters[j]] = clusters[i]
    return labels


def _join_nearest(units: np.ndarray, labels: np.ndarray, which: np.ndarray) -> np.ndarray:
    """`labels` with each window in `which` given the cluster whose centroid is most similar."""
    clusters = sorted(set(labels[~which]))
    centroids = np.stack([units[(labels == c) & ~which].mean(axis=0) for c in clusters])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    out = labels.copy()
    out[which] = np.array(clusters)[(units[which] @ centroids.T).argmax(axis=1)]
    return out
