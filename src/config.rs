//! Owned forms of the builders, to store in a `'static + Send + Sync` operator or module.
//!
//! [`Focal`] and [`SoftmaxFocal`] borrow their weight slices, which is what a training loop
//! wants (no copy, no allocation) but not what a runtime's loss module can hold. A config owns
//! its slices through any `W: AsRef<[f32]>` the caller chooses, so the crate itself needs no
//! allocator:
//!
//! | owner `W` | for |
//! |---|---|
//! | `Arc<[f32]>` | a module shared between threads: `Send + Sync`, `'static`, a clone is a reference count |
//! | `Vec<f32>`, `Box<[f32]>` | one owner |
//! | `[f32; C]` | a fixed class count, `no_std` without `alloc` |
//! | `&'static [f32]` | weights in a `static` |
//!
//! Build with the borrowing builder, convert once with `from_*`, and get a borrowing builder
//! back for each call with [`FocalConfig::focal`] / [`SoftmaxFocalConfig::softmax_focal`]
//! (a copy of a few words; add per-batch sample weights there).

use core::fmt;

use crate::backend::Backend;
use crate::sigmoid::pass::Alpha;
use crate::sigmoid::{Focal, Modulator};
use crate::softmax::SoftmaxFocal;

/// Alpha of a [`FocalConfig`]: none, one value, or one per class.
#[derive(Clone, PartialEq)]
enum OwnedAlpha<W> {
    None,
    Scalar(f32),
    PerClass(W),
}

/// The owned form of [`Focal`]: every setting but the per-batch sample weights, its slices
/// held by `W` (see the [module docs](crate::config) for the choice of `W`).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use focal_loss::{Focal, FocalConfig, Reduction};
///
/// struct LossModule {
///     config: FocalConfig<Arc<[f32]>>, // 'static, Send + Sync, cheap to clone
/// }
/// let w = vec![0.5f32, 2.0];
/// let module = LossModule {
///     config: FocalConfig::from_focal(&Focal::new(2.0).alpha(0.25).class_weights(&w), Arc::from),
/// };
/// fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}
/// assert_send_sync(&module.config);
/// let (x, t) = ([0.3f32, -1.0], [1.0f32, 0.0]);
/// let l = module.config.focal().loss(&x, &t, Reduction::Sum)?;
/// assert_eq!(l, Focal::new(2.0).alpha(0.25).class_weights(&w).loss(&x, &t, Reduction::Sum)?);
/// assert_eq!(module.config.class_weights(), Some(&w[..]));
/// assert_eq!(format!("{:?}", module.config.clone()),
///     "FocalConfig { gamma: 2.0, alpha: Some(0.25), alpha_per_class: None, class_weights: \
///      Some([2 values]), pos_weight: None, label_smoothing: 0.0, classes: None, \
///      modulator: Linear, backend: Auto }");
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct FocalConfig<W> {
    gamma: f32,
    alpha: OwnedAlpha<W>,
    class_weights: Option<W>,
    pos_weight: Option<W>,
    eps: f32,
    classes: Option<usize>,
    modulator: Modulator,
    backend: Backend,
}

impl<W: AsRef<[f32]>> FocalConfig<W> {
    /// The settings of `focal`, each slice copied into an owner made by `own` (for example
    /// `Arc::from`, `Vec::from`, or `|s| <[f32; 4]>::try_from(s).unwrap()`). The sample
    /// weights, which belong to a batch, are not kept.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// let cfg = FocalConfig::from_focal(&Focal::new(2.0).classes(3), Vec::from);
    /// assert_eq!((cfg.gamma(), cfg.classes()), (2.0, Some(3)));
    /// ```
    pub fn from_focal<'f>(focal: &Focal<'f>, mut own: impl FnMut(&'f [f32]) -> W) -> Self {
        FocalConfig {
            gamma: focal.gamma,
            alpha: match focal.alpha {
                Alpha::None => OwnedAlpha::None,
                Alpha::Scalar(a) => OwnedAlpha::Scalar(a),
                Alpha::PerClass(a) => OwnedAlpha::PerClass(own(a)),
            },
            class_weights: focal.class_weights.map(&mut own),
            pos_weight: focal.pos_weight.map(&mut own),
            eps: focal.eps,
            classes: focal.classes,
            modulator: focal.modulator,
            backend: focal.backend,
        }
    }

    /// The borrowing builder with these settings (validated when a loss is computed).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig, Reduction};
    /// let cfg = FocalConfig::from_focal(&Focal::new(0.0), Vec::from);
    /// let l = cfg.focal().loss(&[0.0f32], &[1.0f32], Reduction::Sum)?;
    /// assert!((l - core::f32::consts::LN_2).abs() <= f32::EPSILON);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn focal(&self) -> Focal<'_> {
        Focal {
            gamma: self.gamma,
            alpha: match &self.alpha {
                OwnedAlpha::None => Alpha::None,
                OwnedAlpha::Scalar(a) => Alpha::Scalar(*a),
                OwnedAlpha::PerClass(a) => Alpha::PerClass(a.as_ref()),
            },
            class_weights: self.class_weights.as_ref().map(AsRef::as_ref),
            pos_weight: self.pos_weight.as_ref().map(AsRef::as_ref),
            sample_weights: None,
            eps: self.eps,
            classes: self.classes,
            modulator: self.modulator,
            backend: self.backend,
        }
    }

    /// `gamma`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// assert_eq!(FocalConfig::from_focal(&Focal::new(1.5), Vec::from).gamma(), 1.5);
    /// ```
    pub fn gamma(&self) -> f32 {
        self.gamma
    }

    /// The scalar alpha, if one is set.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// assert_eq!(FocalConfig::from_focal(&Focal::new(2.0).alpha(0.25), Vec::from).alpha(), Some(0.25));
    /// ```
    pub fn alpha(&self) -> Option<f32> {
        match self.alpha {
            OwnedAlpha::Scalar(a) => Some(a),
            _ => None,
        }
    }

    /// The per-class alpha, if set.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// let cfg = FocalConfig::from_focal(&Focal::new(2.0).alpha_per_class(&[0.1, 0.9]), Vec::from);
    /// assert_eq!(cfg.alpha_per_class(), Some(&[0.1f32, 0.9][..]));
    /// ```
    pub fn alpha_per_class(&self) -> Option<&[f32]> {
        match &self.alpha {
            OwnedAlpha::PerClass(a) => Some(a.as_ref()),
            _ => None,
        }
    }

    /// The class weights, if set.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// assert_eq!(FocalConfig::from_focal(&Focal::new(2.0), Vec::from).class_weights(), None);
    /// ```
    pub fn class_weights(&self) -> Option<&[f32]> {
        self.class_weights.as_ref().map(AsRef::as_ref)
    }

    /// The positive weights (`pos_weight`), if set.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// let cfg = FocalConfig::from_focal(&Focal::new(2.0).pos_weight(&[3.0]), Vec::from);
    /// assert_eq!(cfg.pos_weight(), Some(&[3.0f32][..]));
    /// ```
    pub fn pos_weight(&self) -> Option<&[f32]> {
        self.pos_weight.as_ref().map(AsRef::as_ref)
    }

    /// The label smoothing `eps` (0 when unset).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// let cfg = FocalConfig::from_focal(&Focal::new(2.0).label_smoothing(0.1), Vec::from);
    /// assert_eq!(cfg.label_smoothing(), 0.1);
    /// ```
    pub fn label_smoothing(&self) -> f32 {
        self.eps
    }

    /// The stated number of classes, if any.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig};
    /// assert_eq!(FocalConfig::from_focal(&Focal::new(2.0), Vec::from).classes(), None);
    /// ```
    pub fn classes(&self) -> Option<usize> {
        self.classes
    }

    /// The modulator convention.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Focal, FocalConfig, Modulator};
    /// let cfg = FocalConfig::from_focal(&Focal::tf_original(2.0), Vec::from);
    /// assert_eq!(cfg.modulator(), Modulator::Geometric);
    /// ```
    pub fn modulator(&self) -> Modulator {
        self.modulator
    }

    /// The backend.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Backend, Focal, FocalConfig};
    /// let cfg = FocalConfig::from_focal(&Focal::new(2.0).backend(Backend::Scalar), Vec::from);
    /// assert_eq!(cfg.backend(), Backend::Scalar);
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// A slice in a `Debug`: its length, not its values.
struct Len(usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} values]", self.0)
    }
}

fn len(s: Option<&[f32]>) -> Option<Len> {
    s.map(|s| Len(s.len()))
}

impl<W: AsRef<[f32]>> fmt::Debug for FocalConfig<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FocalConfig")
            .field("gamma", &self.gamma)
            .field("alpha", &self.alpha())
            .field("alpha_per_class", &len(self.alpha_per_class()))
            .field("class_weights", &len(self.class_weights()))
            .field("pos_weight", &len(self.pos_weight()))
            .field("label_smoothing", &self.eps)
            .field("classes", &self.classes)
            .field("modulator", &self.modulator)
            .field("backend", &self.backend)
            .finish()
    }
}

/// The owned form of [`SoftmaxFocal`]: every setting but the per-batch sample weights, the
/// class weights held by `W` (see the [module docs](crate::config)).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use focal_loss::{Reduction, SoftmaxFocal, SoftmaxFocalConfig};
/// let w = [1.0f32, 4.0, 2.0];
/// let cfg: SoftmaxFocalConfig<Arc<[f32]>> =
///     SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::new(2.0).class_weights(&w).ignore_index(-100), Arc::from);
/// let shared = cfg.clone(); // a reference count
/// let x = [0.5f32, -1.0, 2.0];
/// let l = shared.softmax_focal().loss(&x, &[1i64], Reduction::Sum)?;
/// assert_eq!(l, SoftmaxFocal::new(2.0).class_weights(&w).loss(&x, &[1i64], Reduction::Sum)?);
/// assert_eq!((cfg.ignore_index(), cfg.class_weights()), (Some(-100), Some(&w[..])));
/// # Ok::<(), focal_loss::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct SoftmaxFocalConfig<W> {
    gamma: f32,
    alpha: f32,
    class_weights: Option<W>,
    eps: f32,
    ignore_index: Option<i64>,
    classes: Option<usize>,
    spatial: usize,
    backend: Backend,
}

impl<W: AsRef<[f32]>> SoftmaxFocalConfig<W> {
    /// The settings of `sf`, the class weights copied into an owner made by `own`; the
    /// per-batch sample weights are not kept.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::new(2.0).spatial(64), Vec::from);
    /// assert_eq!(cfg.spatial(), 64);
    /// ```
    pub fn from_softmax_focal<'f>(sf: &SoftmaxFocal<'f>, own: impl FnMut(&'f [f32]) -> W) -> Self {
        SoftmaxFocalConfig {
            gamma: sf.gamma,
            alpha: sf.alpha,
            class_weights: sf.class_weights.map(own),
            eps: sf.eps,
            ignore_index: sf.ignore_index,
            classes: sf.classes,
            spatial: sf.spatial,
            backend: sf.backend,
        }
    }

    /// The borrowing builder with these settings.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Reduction, SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::cross_entropy(), Vec::from);
    /// let l = cfg.softmax_focal().loss(&[0.0f32, 0.0], &[1u8], Reduction::Mean)?;
    /// assert!((l - core::f32::consts::LN_2).abs() <= f32::EPSILON);
    /// # Ok::<(), focal_loss::Error>(())
    /// ```
    pub fn softmax_focal(&self) -> SoftmaxFocal<'_> {
        SoftmaxFocal {
            gamma: self.gamma,
            alpha: self.alpha,
            class_weights: self.class_weights.as_ref().map(AsRef::as_ref),
            sample_weights: None,
            eps: self.eps,
            ignore_index: self.ignore_index,
            classes: self.classes,
            spatial: self.spatial,
            backend: self.backend,
        }
    }

    /// `gamma`.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::new(0.5), Vec::from);
    /// assert_eq!(cfg.gamma(), 0.5);
    /// ```
    pub fn gamma(&self) -> f32 {
        self.gamma
    }

    /// The scalar factor alpha (1 when unset).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::mmcv(0.25, 2.0), Vec::from);
    /// assert_eq!(cfg.alpha(), 0.25);
    /// ```
    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// The class weights, if set.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::new(2.0), Vec::from);
    /// assert_eq!(cfg.class_weights(), None);
    /// ```
    pub fn class_weights(&self) -> Option<&[f32]> {
        self.class_weights.as_ref().map(AsRef::as_ref)
    }

    /// The label smoothing `eps` (0 when unset).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let sf = SoftmaxFocal::new(2.0).label_smoothing(0.1);
    /// assert_eq!(SoftmaxFocalConfig::from_softmax_focal(&sf, Vec::from).label_smoothing(), 0.1);
    /// ```
    pub fn label_smoothing(&self) -> f32 {
        self.eps
    }

    /// The ignore index, if set.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let sf = SoftmaxFocal::new(2.0).ignore_index(255);
    /// assert_eq!(SoftmaxFocalConfig::from_softmax_focal(&sf, Vec::from).ignore_index(), Some(255));
    /// ```
    pub fn ignore_index(&self) -> Option<i64> {
        self.ignore_index
    }

    /// The stated number of classes, if any.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let sf = SoftmaxFocal::new(2.0).classes(19);
    /// assert_eq!(SoftmaxFocalConfig::from_softmax_focal(&sf, Vec::from).classes(), Some(19));
    /// ```
    pub fn classes(&self) -> Option<usize> {
        self.classes
    }

    /// The positions per image `S` (1: class-last).
    ///
    /// # Example
    /// ```
    /// use focal_loss::{SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::new(2.0), Vec::from);
    /// assert_eq!(cfg.spatial(), 1);
    /// ```
    pub fn spatial(&self) -> usize {
        self.spatial
    }

    /// The backend.
    ///
    /// # Example
    /// ```
    /// use focal_loss::{Backend, SoftmaxFocal, SoftmaxFocalConfig};
    /// let cfg = SoftmaxFocalConfig::from_softmax_focal(&SoftmaxFocal::new(2.0), Vec::from);
    /// assert_eq!(cfg.backend(), Backend::Auto);
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl<W: AsRef<[f32]>> fmt::Debug for SoftmaxFocalConfig<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftmaxFocalConfig")
            .field("gamma", &self.gamma)
            .field("alpha", &self.alpha)
            .field("class_weights", &len(self.class_weights()))
            .field("label_smoothing", &self.eps)
            .field("ignore_index", &self.ignore_index)
            .field("classes", &self.classes)
            .field("spatial", &self.spatial)
            .field("backend", &self.backend)
            .finish()
    }
}
