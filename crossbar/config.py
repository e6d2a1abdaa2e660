r"""Periphery and update configurations (aihwkit ``IOParameters`` / ``UpdateParameters`` names).

DAC/ADC grids follow aihwkit: ``inp_res`` (``out_res``) is the resolution as a
fraction of the full range ``2 * inp_bound`` (``2 * out_bound``), i.e. the step
is ``res * 2 * bound``; ``inp_res = 1/126`` is a 7-bit signed DAC and
``out_res = 1/510`` a 9-bit signed ADC.  ``res <= 0`` means no quantisation.
"""
from __future__ import annotations

from dataclasses import dataclass

from xbarsim.devices.validation import Serialisable, require_bool, require_choice, require_number

NOISE_MANAGEMENT = ("abs_max", "none", "constant")
BOUND_MANAGEMENT = ("iterative", "none")
W_NOISE_TYPES = ("none", "additive_constant", "pcm_read")


@dataclass(frozen=True)
class IOConfig(Serialisable):
    r"""Forward/backward read periphery of one tile.

    A read of input vector ``x`` proceeds (aihwkit's analog MVM):

    1. noise management: ``s = max_j |x_j|`` (``abs_max``), ``nm_thres`` if ``constant``,
       1 if ``none``; ``x' = x / s``;
    2. DAC: ``x_q = clip(round(x'/dx) dx, -inp_bound, inp_bound)`` with ``dx = inp_res * 2 inp_bound``,
       then ``+ inp_noise * xi``;
    3. analog MVM ``y = W x_q`` plus weight noise (``w_noise_type``:
       ``additive_constant``: ``+ w_noise ||x_q||_2 xi``; ``pcm_read``:
       ``+ w_noise sqrt(sum_j |W_ij| x_qj^2) xi``) and output noise ``+ out_noise xi``;
    4. ADC: ``y_q = clip(round(y/dy) dy, -out_bound, out_bound)``, ``dy = out_res * 2 out_bound``;
    5. bound management (forward only, ``iterative``): if any output of a sample
       saturated, the sample is read again with its input halved, until it does
       not saturate, the total reduction exceeds ``max_bm_factor``, or it exceeds
       ``max_bm_res / inp_res``;
    6. the digital result is ``s * 2^k * y_q``.

    ``perfect=True`` skips all of it: ``y = W x`` exactly.
    """

    #: skip the periphery: ``y = W x`` exactly
    perfect: bool = False
    #: DAC input range ``[-inp_bound, inp_bound]`` (normalised input units)
    inp_bound: float = 1.0
    #: DAC step as a fraction of the full range ``2 inp_bound`` (1/126: 7 bits; aihwkit default)
    inp_res: float = 1.0 / 126.0
    #: std of Gaussian noise added to each DAC output (normalised input units)
    inp_noise: float = 0.0
    #: ADC output range ``[-out_bound, out_bound]`` (weight x input units)
    out_bound: float = 12.0
    #: ADC step as a fraction of the full range ``2 out_bound`` (1/510: 9 bits; aihwkit default)
    out_res: float = 1.0 / 510.0
    #: std of Gaussian noise added to each analog output before the ADC (weight x input units)
    out_noise: float = 0.06
    #: weight (read) noise scale, meaning set by ``w_noise_type`` (weight units)
    w_noise: float = 0.0
    #: ``none``, ``additive_constant`` or ``pcm_read`` (see step 3)
    w_noise_type: str = "none"
    #: input scaling before the DAC: ``abs_max``, ``constant`` (``nm_thres``) or ``none``
    noise_management: str = "abs_max"
    #: the scale of ``constant`` noise management (normalised input units)
    nm_thres: float = 0.0
    #: ``iterative`` (forward reads only) or ``none``
    bound_management: str = "iterative"
    #: largest total input reduction of bound management (dimensionless)
    max_bm_factor: float = 1000.0
    #: bound management stops once the input step would exceed this resolution (dimensionless)
    max_bm_res: float = 0.25

    def __post_init__(self) -> None:
        n = "IOConfig"
        require_bool(n, "perfect", self.perfect)
        require_number(n, "inp_bound", self.inp_bound, 0.0, None, lo_open=True)
        require_number(n, "inp_res", self.inp_res, None, 1.0)
        require_number(n, "inp_noise", self.inp_noise, 0.0, None)
        require_number(n, "out_bound", self.out_bound, 0.0, None, lo_open=True)
        require_number(n, "out_res", self.out_res, None, 1.0)
        require_number(n, "out_noise", self.out_noise, 0.0, None)
        require_number(n, "w_noise", self.w_noise, 0.0, None)
        require_choice(n, "w_noise_type", self.w_noise_type, W_NOISE_TYPES)
        require_choice(n, "noise_management", self.noise_management, NOISE_MANAGEMENT)
        require_number(n, "nm_thres", self.nm_thres, 0.0, None)
        if self.noise_management == "constant" and self.nm_thres <= 0:
            raise ValueError("IOConfig.nm_thres must be > 0 when noise_management = 'constant'")
        require_choice(n, "bound_management", self.bound_management, BOUND_MANAGEMENT)
        require_number(n, "max_bm_factor", self.max_bm_factor, 1.0, None)
        require_number(n, "max_bm_res", self.max_bm_res, 0.0, 1.0, lo_open=True)

    @property
    def inp_step(self) -> float:
        """DAC step in input units (0 = unquantised)."""
        return self.inp_res * 2.0 * self.inp_bound if self.inp_res > 0 else 0.0

    @property
    def bm_limit(self) -> float:
        """Largest total input reduction of iterative bound management: ``min(max_bm_factor, max_bm_res / inp_res)``."""
        limit = self.max_bm_factor
        if self.inp_res > 0:
            limit = min(limit, self.max_bm_res / self.inp_res)
        return float(limit)

    @property
    def out_step(self) -> float:
        """ADC step in output units (0 = unquantised)."""
        return self.out_res * 2.0 * self.out_bound if self.out_res > 0 else 0.0


@dataclass(frozen=True)
class UpdateConfig(Serialisable):
    r"""Stochastic pulse-train update (Gokmen & Vlasov 2016; aihwkit ``UpdateParameters``).

    For one sample, with ``x_max = max|x|``, ``d_max = max|d|`` and the device's
    nominal ``dw_min``:

    * ``k = lr x_max d_max / dw_min``; bit length ``BL = min(ceil(k), desired_bl)``
      with ``update_bl_management``, else ``desired_bl``;
    * ``A = B = sqrt(lr / (dw_min BL))``; with ``update_management`` the x- and d-side
      are balanced, ``A *= sqrt(x_max / d_max')``, ``B *= sqrt(d_max' / x_max)``,
      where ``d_max' = d_max * min(1, desired_bl / k)`` keeps x-probabilities <= 1;
    * each of the ``BL`` slots fires on row ``i`` with probability ``min(A|d_i|, 1)`` and
      on column ``j`` with ``min(B|x_j|, 1)``; cell ``(i, j)`` receives one pulse per
      coincidence, of sign ``-sign(d_i x_j)``.

    Hence ``E[#pulses] = BL p_i p_j = lr |d_i x_j| / dw_min`` (when no probability
    clips) and ``E[dW] = -lr d^T x`` near ``w = 0``.
    """

    #: the longest pulse train, in slots (aihwkit default 31)
    desired_bl: int = 31
    #: balance the x- and d-side probabilities (``A``, ``B`` above)
    update_management: bool = True
    #: shorten the train to ``ceil(k)`` slots when fewer suffice
    update_bl_management: bool = True

    def __post_init__(self) -> None:
        require_number("UpdateConfig", "desired_bl", self.desired_bl, 1, 64, integer=True)
        require_bool("UpdateConfig", "update_management", self.update_management)
        require_bool("UpdateConfig", "update_bl_management", self.update_bl_management)
