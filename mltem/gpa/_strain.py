"""Strain algebra: displacement gradient -> strain and rotation, frame rotation, displacement.

All functions are pure and work element-wise on arrays of any shape; the first axis of a
stacked input holds the components. Image axes are (y, x) with y pointing down the rows,
so a positive rotation turns the +x axis towards +y (clockwise as the image is shown).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "STRAIN_COMPONENTS",
    "DEFINITIONS",
    "strain_from_distortion",
    "rotate_strain",
    "displacement_from_phases",
]

#: Order of the maps in every strain array of mltem: (exx, eyy, exy, rotation).
STRAIN_COMPONENTS = ("exx", "eyy", "exy", "rotation")

#: Strain definitions: "lattice" = local lattice vs reference (polar decomposition of the
#: deformation gradient, exact at any strain); "linear" = Hytch's small-strain
#: e_ij = du_i/dx_j (symmetric part) with rotation from the antisymmetric part.
DEFINITIONS = ("lattice", "linear")


def strain_from_distortion(dxx, dxy, dyx, dyy, *, definition: str = "lattice", out=None):
    """Strain and rotation maps from the displacement gradient ``D_ij = du_i/dx_j``.

    GPA measures the Eulerian displacement gradient ``D`` of the image
    ``I(r) = I_ref(r - u(r))`` exactly. The local lattice is then related to the reference
    lattice by the deformation gradient ``F = (1 - D)^-1`` (Rouviere & Sarigiannidou 2005).

    Parameters
    ----------
    dxx, dxy, dyx, dyy : array_like
        Components ``du_x/dx``, ``du_x/dy``, ``du_y/dx``, ``du_y/dy`` (dimensionless), all
        of one shape.
    definition : {"lattice", "linear"}
        ``"lattice"``: polar decomposition ``F = R U``; ``exx, eyy, exy`` are the
        components of ``U - 1`` (a lattice expanded by 5 % reads 0.05 exactly) and the
        rotation is the angle of ``R``. ``"linear"``: Hytch's small-strain values
        ``exx = D_xx``, ``eyy = D_yy``, ``exy = (D_xy + D_yx) / 2``,
        ``rotation = (D_yx - D_xy) / 2``; they agree with ``"lattice"`` to first order.
    out : numpy.ndarray, optional
        Array of shape ``(4, *D.shape)`` to write into.

    Returns
    -------
    numpy.ndarray
        Shape ``(4, *D.shape)``: exx, eyy, exy (dimensionless) and rotation (rad,
        positive turns +x towards +y).

    References
    ----------
    M. J. Hytch, E. Snoeck, R. Kilaas, Ultramicroscopy 74, 131 (1998),
    :DOI:`10.1016/S0304-3991(98)00035-7`.
    J.-L. Rouviere, E. Sarigiannidou, Ultramicroscopy 106, 1 (2005),
    :DOI:`10.1016/j.ultramic.2005.06.001`.
    """
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    dxx, dxy, dyx, dyy = np.broadcast_arrays(*(np.asarray(a) for a in (dxx, dxy, dyx, dyy)))
    dtype = np.result_type(dxx.dtype, np.float32)
    if out is None:
        out = np.empty((4, *dxx.shape), dtype=dtype)
    elif out.shape != (4, *dxx.shape):
        raise ValueError(f"out must have shape {(4, *dxx.shape)}, got {out.shape}")
    if definition == "linear":
        np.copyto(out[0, ...], dxx)
        np.copyto(out[1, ...], dyy)
        np.add(dxy, dyx, out=out[2, ...])
        out[2, ...] *= 0.5
        np.subtract(dyx, dxy, out=out[3, ...])
        out[3, ...] *= 0.5
        return out
    # F = (1 - D)^-1 = adj(B) / det(B), B = 1 - D. Polar decomposition in 2D:
    # theta = atan2(F_yx - F_xy, F_xx + F_yy) = atan2(Q, P) with P = 2 - Dxx - Dyy,
    # Q = Dyx - Dxy (det B > 0); U = R(-theta) F.
    p = 2.0 - dxx - dyy
    q = dyx - dxy
    np.arctan2(q, p, out=out[3, ...])
    det = (1.0 - dxx) * (1.0 - dyy) - dxy * dyx
    inv = 1.0 / (np.hypot(p, q) * det)
    # U_xx = [P (1 - Dyy) + Q Dyx] / (det |PQ|), U_yy = [P (1 - Dxx) - Q Dxy] / ...,
    # U_xy = [P Dxy + Q (1 - Dxx)] / ...
    np.multiply(p, 1.0 - dyy, out=out[0, ...])
    out[0, ...] += q * dyx
    out[0, ...] *= inv
    out[0, ...] -= 1.0
    np.multiply(p, 1.0 - dxx, out=out[1, ...])
    out[1, ...] -= q * dxy
    out[1, ...] *= inv
    out[1, ...] -= 1.0
    np.multiply(p, dxy, out=out[2, ...])
    out[2, ...] += q * (1.0 - dxx)
    out[2, ...] *= inv
    return out


def rotate_strain(strain, angle_deg: float, *, axis: int = -3):
    """Express strain maps in axes turned by ``angle_deg`` from the image axes.

    Parameters
    ----------
    strain : numpy.ndarray
        Shape ``(..., 4, y, x)``: exx, eyy, exy, rotation on ``axis``.
    angle_deg : float
        Direction of the new x axis, in degrees, measured from the image x axis towards
        the image y axis (clockwise on screen, since rows go down), e.g. a crystal
        direction.
    axis : int
        The axis that holds the four components (default: third from last).

    Returns
    -------
    numpy.ndarray
        Same shape: exx', eyy', exy' in the new axes; the rotation is unchanged.
    """
    strain = np.asarray(strain)
    if strain.ndim == 0 or strain.shape[axis] != 4:
        raise ValueError(
            f"strain must hold the 4 components (exx, eyy, exy, rotation) on axis {axis}; got shape {strain.shape}"
        )
    exx, eyy, exy, rot = (np.take(strain, i, axis=axis) for i in range(4))
    a = np.deg2rad(float(angle_deg))
    c, s = np.cos(a), np.sin(a)
    res = np.stack(
        [
            exx * c * c + eyy * s * s + 2 * exy * c * s,
            exx * s * s + eyy * c * c - 2 * exy * c * s,
            (eyy - exx) * c * s + exy * (c * c - s * s),
            rot,
        ],
        axis=axis,
    )
    return res.astype(np.result_type(strain.dtype, np.float32), copy=False)


def displacement_from_phases(phases, g_vectors):
    """Displacement field ``u = -(P1 a1 + P2 a2) / 2 pi`` from two geometric phases.

    Parameters
    ----------
    phases : numpy.ndarray
        Shape ``(2, y, x)``: geometric phases of the two reflections (rad, wrapped).
    g_vectors : array_like
        Shape ``(2, 2)``: the reference reciprocal vectors as rows ``(g_y, g_x)`` in 1/px
        (or 1/nm, and then ``u`` is in nm).

    Returns
    -------
    numpy.ndarray
        Shape ``(2, y, x)``: ``(u_y, u_x)`` in px (or nm). With wrapped phases ``u`` is
        known modulo a lattice vector; unwrap the phases first for a continuous field.
    """
    phases = np.asarray(phases)
    g = np.asarray(g_vectors, dtype=float)
    if phases.ndim < 1 or phases.shape[0] != 2:
        raise ValueError(f"phases must have shape (2, y, x), got {phases.shape}")
    if g.shape != (2, 2):
        raise ValueError(f"g_vectors must have shape (2, 2) as rows (g_y, g_x), got {g.shape}")
    # rows (gy, gx) -> G with rows (gx, gy); A = G^-1 holds a1, a2 as columns (x, y).
    gm = g[:, ::-1]
    if abs(np.linalg.det(gm)) < 1e-12 * max(1.0, float(np.abs(gm).max()) ** 2):
        raise ValueError("g_vectors are collinear; pick two non-parallel reflections")
    a = np.linalg.inv(gm)
    ux = -(a[0, 0] * phases[0] + a[0, 1] * phases[1]) / (2 * np.pi)
    uy = -(a[1, 0] * phases[0] + a[1, 1] * phases[1]) / (2 * np.pi)
    return np.stack([uy, ux]).astype(np.result_type(phases.dtype, np.float32), copy=False)
