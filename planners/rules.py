"""Rule-based planner: the embedded default (no model, no network, ~0.1 ms a request).

A request is split into clauses ("remove the man and make it black and white" is two
edits); each clause is read as *verb + what + where*:

- verb lexicons per kind: remove, extract, add (insert), replace, the general change
  verbs (change / turn / make / convert / colour / paint / have / let / give ...),
  adjustment verbs (brighten, increase, blur ...), outpaint, geometry, and session words
  (undo, redo, "go back to version 3", "show the history", "compare with the original");
- noun phrases: the *target* (the phrase ``ground`` receives, e.g. "the man"), with the
  instance selector kept apart ("on the left" -> select="left", "the second cup from the
  right" -> select="right", index=1, "the other dog" -> the candidate not used last time),
  and the full description (``target_full``);
- what the object becomes, read with word lists: colours and materials (a *local*
  edit), scenes and environments (a *background* edit), styles, weather and times of day
  (a *global* edit), named adjustments (classical ``global_edit``), another object (a
  *replace*), a pose ("raise the arm": an action edit, routed as local to the
  instruction model);
- places for insertion ("on the table" -> the table is grounded; "in the top-right
  corner" -> an image region), outpaint sides and amounts, strengths ("a bit", "much").

References to the last turn ("make it stronger", "do the same to the other dog", "undo
that", "remove it") read ``PlanContext.last_plan``. A clause it cannot read gets a short
question back, never a guess that edits the whole image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from imagent.planners.base import Plan, PlanContext, Step
from imagent.planners.lazyre import lazy as _lazy
from imagent.tools import referent as R
from imagent.tools.types import ToolCall


def _alt(words: str) -> str:
    """A regex alternation of whitespace-separated words (``_`` = a space), longest first."""
    items = sorted({w.replace("_", " ") for w in words.split()}, key=len, reverse=True)
    return "|".join(re.escape(w).replace(r"\ ", " ") for w in items)


def _rx(expr: str) -> re.Pattern[str]:
    return _lazy(expr)


def _w(words: str) -> re.Pattern[str]:
    return _lazy(rf"\b(?:{_alt(words)})\b")


# ----------------------------------------------------------------------------- lexicons
COLOURS = _alt("""
red orange yellow green blue purple violet pink brown black white grey gray gold golden silver
beige cyan magenta teal turquoise navy maroon crimson scarlet lavender lilac khaki tan ivory cream
olive lime indigo coral peach mint blonde blond brunette bronze copper rainbow pastel neon amber
burgundy fuchsia emerald ruby sapphire azure aqua charcoal rust mauve ochre platinum
redder bluer greener yellower pinker multicolored multicoloured colorful colourful
""")
_COLOUR = _lazy(rf"\b(?:{COLOURS})(?:ish)?\b")
_COLOUR_WORDS = _w("color colour colors colours colored coloured hue shade tint tone tones dye "
                   "dyed recolor recolour paint painted")
MATERIALS = _alt("""
wood wooden metal metallic steel iron glass crystal ice icy stone marble plastic paper clay
ceramic porcelain fabric leather wool woolen woollen knitted lego rubber concrete brick chocolate
candy sand statue sculpture velvet fur furry denim silk cotton jade diamond chrome rusty rusted
gingerbread cardboard bamboo straw wicker granite gem gems jewel pearl lava cake cheese
texture textured pattern patterned smooth rough shiny matte glossy fluffy scaly striped stripes
polka checkered plaid floral spotted camouflage sparkly glittery glitter transparent translucent
holographic pixelated origami neon_light plush felt tiled mosaic embroidered carved
""")
_MATERIAL = _lazy(rf"\b(?:{MATERIALS})\b|\bmade (?:out )?of\b|\bout of\b|\b(?:a|an|the) \w+ one\b")
_TEXTURE_WORDS = _w("texture textures material surface finish pattern fur skin wool feathers "
                    "coat shell")

SCENES = _alt("""
background backdrop setting environment scenery surroundings landscape scene backgrounds
beach seaside sea ocean coast coastline shore desert sahara forest woods jungle rainforest
mountain mountains mountain_range alps hills hill valley field fields meadow meadows prairie
plain plains savanna savannah grassland snowland tundra arctic antarctica glacier canyon cliff
island lake lakeside river riverside pond swamp marsh waterfall street streets city cityscape
town village countryside farm farmland park garden gardens bedroom room living_room kitchen office
classroom library museum studio stage cave underwater space outer_space mars moon galaxy sky
skyline downtown alley road highway bridge harbor harbour port dock snowfield volcano battlefield
castle_courtyard courtyard ballroom hall cathedral church temple ruins wasteland dungeon prison
cafe cafeteria restaurant diner bar pub market stadium arena playground backyard yard lawn
rooftop subway station airport train_station mall supermarket hospital school laboratory lab
snow sand grass water field_of_flowers
""")
_SCENE = _lazy(rf"\b(?:{SCENES})\b")
_ENVIRONMENT = _w("background backdrop setting environment scenery surroundings landscape "
                  "backgrounds location place surrounding")

STYLES = r"""(?x)
\b(?:style|styled|stylized|stylised|aesthetic|painting|painted\ by|paintings|drawing|drawn|
illustration|illustrated|sketch|sketched|watercolou?rs?|oil(?:\ painting)?|impasto|acrylic|pencil|
charcoal|ink|woodcut|woodblock|ukiyo-?e|engraving|etching|lithograph|linocut|print|cyanotype|
mosaic|stained[- ]glass|pixel[- ]art|8-bit|16-bit|low[- ]poly|3d\ render|cgi|claymation|
stop[- ]motion|diorama|origami|cartoon|cartoonish|anime|manga|comic|comics|pop\ art|art\ nouveau|
art\ deco|baroque|rococo|renaissance|gothic|medieval|vintage|retro|noir|film[- ]noir|cyberpunk|
steampunk|vaporwave|synthwave|futuristic|fantasy|sci-?fi|psychedelic|abstract|graffiti|poster|
fresco|tapestry|collage|silhouette|caricature|portrait|photograph|photo|polaroid|film|movie|
cinematic|dramatic|dreamy|surreal|magical|pastel|monochrome|hdr|lomo|tilt[- ]shift|bokeh|
van\ gogh|picasso|monet|dali|rembrandt|vermeer|klimt|warhol|banksy|munch|kahlo|matisse|hokusai|
miyazaki|ghibli|pixar|disney|simpsons|lego|minecraft|\w+ism|\w+ist|\w+esque|
\d0s|\d{4}s|1[0-9]th\ century|century|era|ancient|victorian|edwardian|classical|
(?:in|with)\ the\ style|look(?:s|ing)?\ like|as\ if|feel|vibe|filter|effect|tone|mood|
artwork|art|artistic|drawing|render(?:ing|ed)?|painterly|sculpted|carving|cubist|
hand-?drawn|crayon|chalk|marker|pastels|airbrush|storybook|children's\ book|yearbook|
postcard|magazine|album\ cover|tarot|emoji|sticker|icon|logo|blueprint|x-?ray|infrared|
thermal|night\ vision|negative|hologram|glitch|neon|ukiyo)\b"""
_STYLE = _lazy(STYLES)
_WEATHER = _lazy(r"""(?x)\b(?:night(?:time|[- ]time)?|nights|daytime|day[- ]time|daylight|
day|days|sunset|sunrise|dawn|dusk|twilight|evening|morning|afternoon|noon|midnight|golden\ hour|
blue\ hour|rain|rainy|raining|rainstorm|rainfall|snow|snowy|snowing|snowstorm|snowfall|snowed|
blizzard|storm|stormy|thunderstorm|lightning|fog|foggy|mist|misty|haze|hazy|smog|cloud|cloudy|
clouds|overcast|sunny|sunshine|sunlit|clear\ sky|clear\ skies|rainbow|winter|wintry|summer|
autumn|autumnal|fall|spring|springtime|season|seasons|weather|wet|frost|frosty|hail|sandstorm|
tornado|hurricane|moonlight|moonlit|starry|stars|aurora|northern\ lights|christmas|halloween|
fireworks?|apocalyptic|post-apocalyptic|flood|flooded|drought|heatwave|sunny\ day|nightfall|dark)\b""")

# Whole-image subjects: "make it ...", "turn the image into ...".
_WHOLE = _lazy(r"^(?:it|this|that|everything|all of it|the whole thing|(?:the|this|my|our) "
                    r"(?:(?:whole|entire|full|overall) )?(?:image|picture|photo|photograph|pic|shot|"
                    r"scene|frame|view|weather|time(?: of day)?|atmosphere|mood|lighting|"
                    r"light|colou?rs?|tones?|look|style|art style|theme|vibe|aesthetic|season|"
                    r"overall image|world|palette|colou?r scheme|colou?r palette|era|period)|"
                    r"(?:the )?(?:whole|entire) (?:image|picture|photo|scene|thing)|image|picture|the images|"
                    r"photo|the weather|things|the place|the day|today)$")
_PERSON = _w("him her them he she they his their hers theirs me us you man woman men women boy "
             "girl boys girls person people child children kid kids baby lady gentleman guy "
             "player bride groom doctor farmer model couple family crowd")
_PRONOUN_OBJ = _w("him her them he she they")

# Pose and action changes (not an object edit): routed to the instruction model.
_BODY = _w("arm arms hand hands head leg legs foot feet face eyes eye mouth finger fingers "
           "shoulder shoulders knee knees wing wings tail paw paws neck body pose posture")
_POSE_VERB = _w("raise raises raised lift lifts lower lowers turn turns tilt tilts bend bends "
                "cross crosses open opens close closes wave waves point points stretch stretches "
                "fold folds put puts hold holds nod shake shakes")
_ACTION = _w("run running jump jumping fly flying smile smiling laugh laughing cry crying sit "
             "sitting stand standing walk walking dance dancing swim swimming sleep sleeping "
             "wave waving look looking frown frowning wink winking kneel kneeling lie lying bow "
             "bowing sing singing eat eating drink drinking hug hugging kiss kissing gallop "
             "galloping climb climbing roar roaring bark barking fight fighting play playing "
             "ride riding swing swinging throw throwing kick kicking read reading talk talking "
             "yawn yawning stretch stretching crouch crouching pose posing glance glancing "
             "face facing squat squatting move moving wag wagging hop hopping stare staring "
             "shout shouting scream screaming sneeze clap clapping point pointing lean leaning")

# Named adjustments (the classical global_edit operations). Order: specific first.
@dataclass(frozen=True)
class _Adjust:
    pattern: re.Pattern[str]
    operation: str
    sign: int = 0


def _p(expr: str) -> re.Pattern[str]:
    return _lazy(rf"\b(?:{expr})\b")


_ADJUSTMENTS: tuple[_Adjust, ...] = (
    _Adjust(_p(r"black[- ]and[- ]white|black & white|b&w|b/w|gr[ae]yscale|monochrome|"
               r"desaturate (?:it )?completely|remove (?:all )?(?:the )?colou?rs?|no colou?r"), "black_and_white"),
    _Adjust(_p(r"sepia|old[- ]photo look"), "sepia"),
    _Adjust(_p(r"invert(?:ed)?(?: the colou?rs)?|negative"), "invert"),
    _Adjust(_p(r"auto[- ]?contrast|auto[- ]?levels|fix the levels|auto[- ]?enhance|auto[- ]?correct"), "autocontrast"),
    _Adjust(_p(r"vignett(?:e|ing)"), "vignette"),
    _Adjust(_p(r"denoise|de-noise|(?:remove|reduce|less) (?:the )?(?:background )?(?:noise|grain)|noise reduction|less noisy|grainy"), "denoise"),
    _Adjust(_p(r"dehaze|de-haze|(?:remove|reduce) (?:the )?haze|less hazy|clear (?:up )?the haze"), "dehaze"),
    _Adjust(_p(r"white balance|colou?r cast|auto[- ]?wb"), "auto_white_balance"),
    _Adjust(_p(r"low[- ]light|too dark|underexposed|night shot|brighten (?:up )?the shadows|lift the shadows"), "low_light"),
    _Adjust(_p(r"(?:more|increase|boost|raise|higher|add|enhance|stronger|deepen) (?:the )?contrast|contrastier|punchier|more punch|(?:high|higher)[- ]contrast"), "contrast", +1),
    _Adjust(_p(r"(?:less|decrease|reduce|lower|weaker|soften) (?:the )?contrast|flatter|low(?:er)?[- ]contrast"), "contrast", -1),
    _Adjust(_p(r"(?:less|decrease|reduce|lower) (?:the )?(?:saturation|colou?r saturation|colou?rfulness|vibrance)|less (?:saturated|vivid|colou?rful|vibrant)|desaturated?|muted|washed[- ]out|faded|dull(?:er)?"), "saturation", -1),
    _Adjust(_p(r"(?:more|increase|boost|raise|enhance|intensify) (?:the )?(?:saturation|colou?rs?|vibrance|colou?rfulness)|more (?:saturated|vivid|colou?rful|vibrant)|saturated?|vivid|vibrant|pop more"), "saturation", +1),
    _Adjust(_p(r"warmer|warm(?: it)? up|more warm|warm (?:tones?|look|feel|colou?rs|light)|golden tones?|(?:increase|add|more) (?:the )?warmth"), "warmth", +1),
    _Adjust(_p(r"cooler|colder tones?|cool(?: it)? down|cool (?:tones?|look|feel|colou?rs)|bluer tones?|(?:decrease|reduce|less) (?:the )?warmth"), "warmth", -1),
    _Adjust(_p(r"(?:increase|raise|more|boost) (?:the )?exposure|overexpose(?:d)?"), "exposure", +1),
    _Adjust(_p(r"(?:decrease|lower|less|reduce) (?:the )?exposure|underexpose"), "exposure", -1),
    _Adjust(_p(r"brighter|brighten(?:ed)?|lighter|lighten|more light|(?:increase|raise|boost|more|enhance|adjust) (?:the )?(?:brightness|lighting|light)|bright(?:ness)?|sunnier|lit up"), "brightness", +1),
    _Adjust(_p(r"darker|darken(?:ed)?|dimmer|dim|(?:decrease|lower|reduce|less) (?:the )?(?:brightness|light)|moodier"), "brightness", -1),
    _Adjust(_p(r"sharpen|sharper|crisper|more detail(?:ed)?|(?:increase|more) (?:the )?sharpness|unblur|deblur|in focus"), "sharpen"),
    _Adjust(_p(r"blur(?:red)?|blurry|blurrier|soften|softer|defocus(?:ed)?|out of focus"), "blur"),
    _Adjust(_p(r"pixel+ate(?:d)?|pixeli[sz]e(?:d)?|mosaic|censor(?:ed)?|anonymi[sz]e(?:d)?"), "pixelate"),
)
_PRIVATE = _lazy(r"\b(?:faces?|heads?|people|persons?|man|men|woman|women|child(?:ren)?|kids?|"
                      r"boys?|girls?|guys?|plates?|licen[cs]e|number ?plates?|names?|text|her|him|"
                      r"them)\b")
_BASE_AMOUNT = {"brightness": 0.25, "contrast": 0.25, "saturation": 0.3, "exposure": 0.5,
                "warmth": 0.3, "sharpen": 1.0, "blur": 2.0, "pixelate": 0.0}

_WEAK = _lazy(r"\b(a (?:little )?bit|slightly|a little|a touch|somewhat|a tad|subtly|mildly|"
                   r"gently|lightly|barely|just a bit)\b")
_STRONG = _lazy(r"\b(much|a lot|very|way|really|significantly|strongly|heavily|extremely|"
                     r"far|dramatically|considerably|hugely|super|lots)\b")


def _strength(text: str) -> float:
    if _WEAK.search(text):
        return 0.5
    if _STRONG.search(text):
        return 2.0
    return 1.0


# ----------------------------------------------------------------------------- verbs
_V_REMOVE = (r"remove|removing|erase|delete|get rid of|take out|take away|take off|eliminate|"
             r"clear away|clear out|clear|wipe out|wipe away|wipe off|wipe|cut away|eradicate|"
             r"discard|omit|exclude|ditch|hide|strip away|strip off|remove all|get rid|lose|"
             r"do away with|clean up|clean off|clean|rid (?:the (?:image|picture|photo|scene) )?of|"
             r"drop|pluck|scrub|edit out|paint out|retouch out|blot out")
_V_EXTRACT = (r"extract|cut out|isolate|segment out|segment|crop out|separate|pull out|lift out|"
              r"mask out|select only|keep only|keep just|keep nothing but|matte out|"
              r"cut around|clip out")
_V_ADD = (r"add|adding|insert|put|place|draw|paint in|include|create|plant|hang|install|display|"
          r"position|introduce|incorporate|attach|throw in|bring in|sprinkle|scatter|spawn|"
          r"generate|stick|pin|set up|build|grow|fill it with|fill with|fill|let there be|"
          r"there should be|there is|there are|show|arrange|lay|mount|embed|superimpose|overlay|"
          r"paste|drop in|slip in|sneak in|squeeze in|write|type|caption|label|stamp|sign|"
          r"decorate|adorn|cover|surround|wrap|equip|dress|accessorize|feature|depict|bring|"
          r"set|pop|float|perch|park|seat|stand|picture|imagine|visuali[sz]e|envision|construct|"
          r"erect|lean|inject|infuse|infest|populate|sprinkle in|sketch|consider|drape|toss in|"
          r"toss|fly|scatter|crown")
_V_REPLACE = r"replace|swap out|swap|substitute|exchange|switch out|trade|interchange"
_V_CHANGE = (r"change|changing|turn|turning|make|making|convert|transform|morph|transfer|alter|"
             r"modify|switch|render|recolou?r|colou?r|paint|repaint|dye|tint|let|have|get|restyle|"
             r"re-?imagine|update|edit|redo|redesign|rework|remake|give|craft|shape|carve|mold|"
             r"mould|cast|sculpt|reshape|resize|scale|enlarge|shrink|rotate|flip|mirror|age|"
             r"regress|regenerate|reform|evolve|upgrade|downgrade|dress up|style|stylize|"
             r"stylise|apply|use|go|become|adjust|fix|correct|enhance|improve|retouch|clean up|"
             r"restore|repair|colorize|colourize|weather|flood|cover")
_V_ADJUST = (r"brighten|darken|lighten|sharpen|blur|pixelate|pixelize|pixelise|censor|anonymize|"
             r"anonymise|soften|increase|decrease|boost|reduce|"
             r"lower|raise|enhance|adjust|fix|correct|saturate|desaturate|warm|cool|invert|"
             r"denoise|dehaze|intensify|deepen|dim|fade|mute|tone down|tone up|amplify|"
             r"strengthen|weaken|heighten|crank up|bump up|turn up|turn down|pump up|up|"
             r"auto-?correct|auto-?enhance|improve|balance|even out|normalize|normalise")
_V_MOVE = r"move|relocate|shift|take|send|bring|transport|teleport|drag|carry|teleport"
_V_OUTPAINT = (r"extend|expand|outpaint|widen|uncrop|zoom out|enlarge the canvas|"
               r"pad|grow the canvas|make room")

# ----------------------------------------------------------------------------- transparency
# "remove the background" is a cut-out (extract: everything but the subject becomes
# transparent), not the inpainting of a region called "the background"; the subject is
# MAIN_SUBJECT unless named ("remove the background behind the dog"). Each pattern is a whole
# clause; its group ``x``, when set, is what to keep. False friends ("remove the background
# noise", "remove the background person") do not match: the background must end the clause.
MAIN_SUBJECT = "the main subject"
_BG = r"(?:back ?grounds?|bg|backdrop)"
_BG_DET = r"(?:(?:the|its|this|that|his|her|their|my|our|your|a|an) )?"
_BG_WHO = r"(?P<x>it|this|that|them|him|her|the (?:image|picture|photo|pic|shot)|.+?)"
_CUTOUT = [_lazy(p) for p in (
    # remove / delete / erase the background [from the photo | behind the dog]
    rf"^(?:remove|delete|erase|get rid of|take away|take out|cut away|cut out|strip(?: away| off"
    rf"| out)?|eliminate|ditch|drop|lose|knock out|nuke|kill) {_BG_DET}{_BG}"
    rf"(?: (?:(?:from|of|in|off) (?:the |this |that |my )?(?:image|picture|photo|pic|shot|"
    rf"portrait|product(?: shot| photo)?|it)|(?:behind|around) {_BG_WHO}))?$",
    rf"^{_BG} (?:removal|remover|removed|cut ?out)$",
    rf"^(?:no|without(?: the| a)?) {_BG}$",
    # make the background transparent / see-through
    rf"^(?:make|turn|set|render|change|convert) {_BG_DET}{_BG}(?: behind {_BG_WHO})? "
    rf"(?:to |into )?(?:be )?(?:transparent|see[- ]through|invisible|alpha|clear|empty)$",
    # "transparent background", "give it a transparent background", "put the cat on a transparent bg"
    rf"^(?:(?:give|make|put|place|set|cut out|isolate|extract) {_BG_WHO} (?:on |onto |against |with |"
    rf"to (?:have )?)?|(?:with |use |add |i want |want )?)(?:a |an )?(?:transparent|see[- ]through|"
    rf"empty|alpha) {_BG}$",
    # remove everything but the cat; cut the cat out (of the picture)
    rf"^(?:remove|delete|erase|hide|get rid of|clear) (?:everything|all|anything|the rest)(?: else)?"
    rf"(?: of (?:the |this )?(?:image|picture|photo))? (?:but|except(?: for)?|other than|"
    rf"apart from|besides|save|aside from) {_BG_WHO}$",
    rf"^cut {_BG_WHO} out(?: of (?:the |this )?(?:image|picture|photo|pic|shot|scene|frame|{_BG}))?$",
)]
# On a version with transparency: fill it in ("add a white background", "make it opaque").
# ``_FLATTEN_ALWAYS`` only means that; ``_FLATTEN_IF_ALPHA`` means it only when the image has
# an alpha plane (on an opaque image "make the background white" is a background edit).
_FILL = rf"(?P<c>#[0-9a-f]{{3,6}}|(?:(?:light|dark|pale|bright|deep) )?(?:{COLOURS}))"
_FLATTEN_ALWAYS = [_lazy(p) for p in (
    rf"^(?:make|turn|set) (?:it|this|the (?:image|picture|photo)|{_BG_DET}{_BG}) (?:fully |completely )?"
    rf"(?:opaque|non-?transparent|solid)(?: (?:with|in|using) {_FILL})?$",
    rf"^(?:remove|drop|get rid of|undo|flatten|fill(?: in)?) {_BG_DET}(?:transparency|transparent "
    rf"(?:parts?|areas?|pixels|regions?|bits)|alpha(?: channel)?)(?: (?:with|in|using|onto) {_FILL})?$",
    rf"^flatten(?: (?:it|this|the (?:image|picture|photo)|the layers?))?(?: (?:on|onto|against|with) "
    rf"(?:a |an )?{_FILL}(?: {_BG})?)?$",
)]
# ...or give it back: the pixels under the transparency were kept, so this is lossless.
_RESTORE_IF_ALPHA = [_lazy(p) for p in (
    rf"^(?:undo|revert|reverse) {_BG_DET}(?:cut[- ]?out|background removal|transparency|{_BG} removal)$",
    rf"^(?:restore|bring back|put back|show|unhide|reveal) {_BG_DET}{_BG}(?: again)?$",
    rf"^(?:bring|put|get) {_BG_DET}{_BG} back$",
    rf"^make {_BG_DET}{_BG} visible(?: again)?$",
)]
_FLATTEN_IF_ALPHA = [_lazy(p) for p in (
    rf"^(?:(?:add|use|give (?:it|this|them)|put (?:it|this|them) (?:on|onto|against)|place (?:it|this|them) "
    rf"(?:on|onto|against)|with|i want) )?(?:a |an )?{_FILL} {_BG}$",
    rf"^(?:make|turn|set|change|paint|colou?r) {_BG_DET}{_BG} (?:to |into )?{_FILL}$",
    rf"^fill {_BG_DET}{_BG} (?:with|in) {_FILL}$",
)]

_SPLIT_VERBS = "|".join((_V_REMOVE, _V_EXTRACT, _V_REPLACE, _V_OUTPAINT,
                         r"add|insert|put|place|make|turn|change|convert|transform|colou?r|paint|"
                         r"give|brighten|darken|increase|decrease|boost|reduce|sharpen|blur|"
                         r"rotate|flip|mirror|crop|undo|redo|go back|revert|apply|enhance|fix|"
                         r"adjust|resize|set|let|have"))
_SPLIT = _lazy(
    rf"\s*(?:;|\.\s+(?=(?:please\s+|then\s+|also\s+|and\s+|now\s+)?(?:{_SPLIT_VERBS})\b)|"
    rf",?\s+(?:and\s+)?then\s+|,?\s+after that,?\s+|,?\s+afterwards,?\s+|,?\s+plus\s+|"
    rf",?\s+and\s+(?:also\s+|please\s+)?(?=(?:{_SPLIT_VERBS})\b(?!\s+(?:of|to)\b))|"
    rf",\s+(?:also\s+)?(?=(?:{_SPLIT_VERBS})\b(?!\s+(?:of|to)\b)))\s*")
_SENTENCE = _lazy(r"(?<=[a-z0-9\)\"'])\.\s+")
_POLITE = _lazy(
    r"^(?:(?:please|pls|kindly|ok(?:ay)?|so|hey|hi|now|also|then|and|next|finally|lastly|first|"
    r"firstly|just|simply|alright|right|well|oh|oops|whoops|hmm|additionally|secondly|thirdly|"
    r"imagent)[,]?\s+|"
    r"(?:could|can|would|will) you(?: please)?\s+|i(?:'d| would) (?:like|love) (?:you )?to\s+|"
    r"i want (?:you )?to\s+|i need (?:you )?to\s+|i(?:'d| would) like\s+|let'?s\s+|let us\s+|"
    r"try to\s+|try and\s+|help me\s+|go ahead and\s+|you should\s+|you can\s+|"
    r"we need to\s+|i want\s+(?=(?:this|it|the)\b)|time to\s+|please,\s+|make sure to\s+|"
    r"be sure to\s+|how about\s+(?=\w+ing\b)?)+")
# Trailing qualifiers that say how, not what: dropped before parsing.
_QUALIFIER = _lazy(
    r"(?:,\s*|\s+)(?:while|whilst|but|keeping|keep|maintaining|maintain|preserving|preserve|"
    r"ensuring|ensure|making sure|leaving|leave|blending|blend|in order to|"
    r"without changing|without affecting|without altering|and keep|and leave|and blend|"
    r"and ensure|and restore|and make sure|and maintain|and preserve|as naturally|"
    r"seamlessly|naturally|realistically|with (?:a )?(?:seamless|natural|realistic)|"
    r"to (?:match|blend|restore|complete|create|give|show|reveal|fill|"
    r"achieve|enhance)\b)(?!\w).*$")


def _clean(text: str) -> str:
    text = text.strip().lower()
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\b(the|a|an) \1\b", r"\1", text)  # "the the candy cane"
    text = re.sub(r"^instead of [^,]+,\s*", "", text)
    text = text.strip(" .!?")
    prev = None
    while prev != text:
        prev = text
        text = _POLITE.sub("", text).strip(" ,")
    return text


# ----------------------------------------------------------------------------- noun phrases
_DET = (r"(?:the|a|an|this|that|these|those|his|her|their|its|my|our|your|some|all(?: of)?(?: the)?|"
        r"both(?: of)?(?: the)?|every|each|any|one|two|three|four|five|six|several|many|few|a few|"
        r"a couple of|a pair of|a group of|a bunch of|a set of|a piece of|a slice of|a lot of|"
        r"lots of|no|more|other|another|extra|additional)")
_PREPS = ("in on at near next by with from to into inside under underneath above below behind "
          "beside besides between over along across around against onto through towards toward "
          "among amid within without beyond past off upon via throughout outside atop beneath "
          "for as like than during while whose who which that where when so because if").split()
_PREPS_SET = frozenset(_PREPS)
_BOUNDARY_WORDS = frozenset(_PREPS) | frozenset(
    "and or but then is are was were be being been has have had should would could "
    "do does did please so too also instead".split())
_NOUN_ING = frozenset(
    "building buildings painting paintings ceiling clothing ring rings king string strings wing "
    "wings swing thing things something anything everything evening morning wedding pudding "
    "stuffing icing frosting lighting railing railings awning siding sibling duckling seedling "
    "earring earrings spring sling ding herring dumpling darling sapling bedding carving carvings "
    "drawing drawings engraving etching sightseeing ceiling lightning nothing piping molding "
    "moulding wiring plumbing housing fencing paving flooring roofing shingles parking stocking "
    "stockings pudding filling topping toppings dressing frosting crossing landing opening "
    "offering gathering sibling".split())
_PARTICIPLE = _lazy(r"^(?:\w+ing|worn|placed|located|positioned|situated|visible|shown|seen|"
                         r"parked|covered|made|dressed|shaped|perched|seated|hung|stacked|"
                         r"filled|holding|carrying|wearing|sitting|standing|lying|located|"
                         r"displayed|depicted|featured|pictured|captured|present|found|reflected|"
                         r"leaning|mounted|attached|hanging|floating|held|labeled|labelled|"
                         r"marked|printed|written|painted|drawn|surrounded|arranged|scattered|"
                         r"spread|piled|lined|framed|cut|sliced|decorated)$")
_IMAGE_TAIL = _lazy(r"\s+(?:(?:that is|which is|that are|which are)\s+)?(?:visible|present|shown|seen|"
                         r"depicted|found|featured|pictured|located|appearing)?\s*"
                         r"(?:in|from|of|on|within|throughout|across) (?:the |this |that )?"
                         r"(?:image|picture|photo|photograph|scene|frame|shot|pic)\b.*$")
_REGION = _lazy(
    r"\b(?:(?:top|upper|bottom|lower)[\s-]*(?:left|right)|(?:left|right)[\s-]*(?:top|upper|bottom|lower))"
    r"(?:[\s-]*(?:hand\s+)?corner)?\b|\b(?:left|right|top|upper|bottom|lower)\s+(?:half|third)\b|"
    r"\b(?:middle|center|centre|central)\s+third\b|\b(?:box|bbox|rect|xywh|xyxy)\s*[:=]?\s*[\[(]?\s*"
    r"-?\d+(?:\.\d+)?(?:\s*[,;\s]\s*-?\d+(?:\.\d+)?){3}|(?<![\w.])\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+"
    r"|\b(?:a|any|the|one) corner\b")
_PLACE_ONLY = _lazy(
    r"^(?:the )?(?:(?:very )?(?:top|upper|bottom|lower|left|right|middle|center|centre|central|"
    r"foreground|background|sides?|edges?|corners?|front|back|rear|far|near|top[\s-]?left|"
    r"top[\s-]?right|bottom[\s-]?left|bottom[\s-]?right|upper[\s-]?left|upper[\s-]?right|"
    r"lower[\s-]?left|lower[\s-]?right|left[\s-]?hand|right[\s-]?hand)[\s-]?)+"
    r"(?:side|part|portion|area|region|edge|corner|half|third|border|strip|section)?"
    r"(?: of (?:the )?(?:image|picture|photo|frame|scene|canvas))?$")

_SELECT_PP = _lazy(
    r"\s*(?:,\s*)?\b(?:on|at|to|in|from|towards?)\s+(?:the\s+)?(?:very\s+)?(?:far\s+)?"
    r"(left|right|top|bottom|center|centre|middle|front|back|rear|foreground)"
    r"(?![\s-]+(?:hand\s+)?(?:side|part|end|edge|area|row|corner)\s+of\b)"
    r"(?:[\s-]+(?:hand\s+)?(?:side|part|end|edge|area|row|corner))?"
    r"(?:\s+of\s+(?:the\s+)?(?:image|picture|photo|frame|scene|group|row|line|table|shelf|photo))?"
    r"(?!\s+of\b)(?=\s|$|,)")
_SELECT_ADJ = _lazy(
    r"\b(leftmost|left-most|rightmost|right-most|left-side|right-side|left-hand|right-hand|left|right|top|upper|topmost|"
    r"bottom|lower|bottommost|middle|center|centre|central|largest|biggest|bigger|larger|tallest|"
    r"taller|smallest|smaller|tiniest|shortest|frontmost|nearest|closest|farthest|furthest)\s+(?=\w)")
_SELECT_NORM = R.SELECT_WORDS
# "the third dog", "the 6th one", "the second dog from the left": the ordinal word (any number),
# the noun after it, and an optional side it counts from (words: tools/referent.py)
_ORDINAL = _lazy(rf"\b({R.ORDINAL_PATTERN})\s+(\w+(?:\s+(?!from\b|on\b|at\b)\w+)?)"
                      r"(?:\s+(?:from|on|at)\s+(?:the\s+)?(left|right|top|bottom))?")
_OPPOSITE = R.OPPOSITE


@dataclass
class _Target:
    phrase: str  # what ground receives
    full: str
    select: str | None = None
    index: int = 0
    other: bool = False  # "the other one": the candidate not used last time


def _strip_image_tail(text: str) -> str:
    text = _IMAGE_TAIL.sub("", text).strip(" ,")
    return re.sub(r"^(?:the )?(?:entire|whole) (?=\w)", "the ", text) if not _WHOLE.match(text) else text


_SPATIAL = frozenset("in on at near next by from to inside under underneath above below behind beside "
                     "over along across around against onto atop beneath upon within among between "
                     "outside out off with".split())
_DEFINITE = _lazy(r"^(?:the|his|her|their|its|this|that|these|those|my|our|your|him|them|"
                       r"[\w-]+'s?)$")
_REL_WORD = _lazy(r"^(?:(?:the )?(?:very )?(?:top|bottom|left|right|front|back|middle|center|centre|"
                       r"side|edge|rear|end|base|tip|foot|peak|corner)(?:[\s-]+(?:side|part|edge|end))?"
                       r" of |of |to |from )")


def _relation_at(words: list[str], i: int) -> int:
    """If words[i:] starts a relation to another named thing ("on the branch", "from his hand",
    "at the bottom of the hill", "that's perched on the branch"), the index after its
    preposition and optional relation words, where its noun phrase begins; else -1."""
    j = i
    # connectors: "that is", "which are", "that's", a participle ("standing", "perched")
    if j < len(words) and words[j] in ("that", "which", "who", "that's", "which's", "who's"):
        j += 1
        if j < len(words) and words[j] in ("is", "are", "was", "were", "sits", "stands", "lies", "hangs"):
            j += 1
    if j < len(words) and _PARTICIPLE.match(words[j]) and words[j] not in _NOUN_ING and j > i - 1:
        if j == i or words[i] in ("that", "which", "who", "that's"):
            j += 1
        elif j != i:
            return -1
    if j >= len(words) or words[j] not in _SPATIAL:
        return -1
    j += 1
    if j < len(words) and words[j] in ("of", "to", "from") and words[j - 1] in ("out", "next", "off"):
        j += 1
    rest = " ".join(words[j:j + 6]) + " "
    m = _REL_WORD.match(rest)
    if m and not rest.startswith(("the ", "his ", "her ", "their ", "its ")) or (
            m and re.match(r"^(?:the |its |his |her |their )(?:very )?(?:top|bottom|left|right|front|back|"
                           r"middle|center|centre|side|edge|rear|end|base|tip|foot|peak|corner)", rest)):
        j += len(m.group(0).split())
    if j < len(words) and (_DEFINITE.match(words[j]) and words[j] not in ("that", "this")
                           or words[j] in ("this", "that")):
        return j
    return -1


def _head_np(text: str) -> str:
    """The head noun phrase: determiner, modifiers, noun, "of" chains and relations to other
    named things ("the bird on the branch", "the cup from his hand"), up to the first
    attribute ("in a blue shirt", "wearing ..."), relative clause, comma or conjunction."""
    words = text.replace("(", " , ").replace(")", " , ").split()
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        bare = w.strip(",;:")
        if not bare:
            break
        if bare == "of" and out:
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if nxt in ("the", "this") and i + 2 < len(words) and words[i + 2].strip(",") in (
                    "image", "picture", "photo", "scene", "frame"):
                break
            out.append("of")
            i += 1
            continue
        if out and (bare in _BOUNDARY_WORDS or (_PARTICIPLE.match(bare) and bare not in _NOUN_ING
                                                and len(out) >= 2 - (out[0] not in _DETS))):
            j = _relation_at([x.strip(",;:") for x in words], i)
            if j > 0 and not re.match(r"^(?:image|picture|photo|scene|frame|foreground|background|"
                                      r"distance)$", words[min(j + 1, len(words) - 1)].strip(",")
                                      if words[j] in ("the", "this") else words[j]):
                out.extend(x.strip(",;:") for x in words[i:j])
                i = j
                continue
            break
        out.append(bare)
        if w.endswith((",", ";", ":")):
            break
        i += 1
    while out and out[-1] in ("of", "the", "a", "an", "that", "which", "is", "are"):
        out.pop()
    return " ".join(out)


_DETS = frozenset("the a an this that these those his her their its my our your some all both "
                  "every each any one two three four five several many few no".split())


def _target(text: str, ctx: PlanContext | None = None) -> _Target:
    """Split a described object into the ground phrase, the selector and the full phrase."""
    full = _strip_image_tail(text.strip(" ,.")).strip()
    full = re.sub(r"^(?:of|from|in|on)\s+", "", full)
    if not full:
        return _Target("", "")
    # An image region ("the flag in the top-left corner", "box 1,2,3,4") is part of the phrase:
    # the embedded ground finds it; it is not an instance selector.
    m = _REGION.search(full)
    if m:
        phrase = full[: m.end()].strip()
        phrase = re.sub(r"\s+(?:hand\s+)?$", "", phrase)
        tail = full[m.end():]
        if re.match(r"^\s*(?:corner|side)\b", tail):
            phrase += re.match(r"^\s*(?:corner|side)\b", tail).group(0)
        return _Target(phrase, full)
    if _PLACE_ONLY.match(full):
        return _Target(full, full)
    select: str | None = None
    index = 0
    other = False
    rest = full
    m = _ORDINAL.search(rest)
    n = R.parse_ordinal(m.group(1)) if m else None
    if n is not None:
        select = m.group(3) or "left"
        if n < 0:  # counted from the other end: "the last dog" = the first from the right
            select, n = R.OPPOSITE[select], -n
        index = n - 1
        rest = (rest[: m.start()] + m.group(2) + rest[m.end():]).strip()
    m = re.search(r"\b(?:the )?other\b(?: one)?", rest)
    if m and not re.search(r"\bothers\b", rest):
        other = True
        rest = (rest[: m.start()] + "the " + rest[m.end():]).strip()
        rest = re.sub(r"^the\s*$", "the one", rest).strip()
    if select is None:
        m = _SELECT_PP.search(rest)
        if m and m.start() > 0:
            select = _SELECT_NORM.get(m.group(1), m.group(1))
            rest = (rest[: m.start()] + rest[m.end():]).strip(" ,")
    if select is None:
        head_zone = rest.split(" of ")[0] if " of " in rest[:40] else rest
        m = _SELECT_ADJ.search(head_zone)
        if m and not re.match(r"(?:side|half|third|corner|part|edge|of)\b", rest[m.end():]):
            word = m.group(1)
            select = _SELECT_NORM.get(word, word)
            rest = (rest[: m.start()] + rest[m.end():]).strip()
    phrase = _head_np(rest) or rest
    phrase = re.sub(r"^(?:all of the|all the|both of the|both the|both)\s+", "the ", phrase)
    if phrase in ("the", "the one", "one", "the ones"):
        phrase = "the one"
    if select in ("front",):
        select = "bottom"
    return _Target(phrase.strip(), full, select, index, other)


# ----------------------------------------------------------------------------- classification
def _is_whole(x: str) -> bool:
    x = x.strip()
    return not x or bool(_WHOLE.match(x))


def _is_person_pronoun(x: str) -> bool:
    return bool(re.fullmatch(r"(?:him|her|them|he|she|they|me|us|you)", x.strip()))


def _is_scene(x: str) -> bool:
    core = _head_np(x)
    core = re.sub(r"^" + _DET + r"\s+", "", core)
    return bool(core) and bool(_SCENE.search(core)) and not _PERSON.search(core)


def _is_env(x: str) -> bool:
    return bool(_ENVIRONMENT.search(x))


def _y_kind(y: str) -> str:
    """What the new content is: adjust / weather / style / environment / colour / material /
    action / wear / object / attribute."""
    y = y.strip(" ,.")
    if not y:
        return "none"
    if re.match(r"^(?:wear|wearing|wears|dressed|hold|holding|holds|carry|carrying|have|having|"
                r"has|with)\b", y):
        return "wear"
    adj = _adjust_match(y)
    if adj and _WEATHER.search(y) and adj.operation in ("brightness", "warmth", "saturation"):
        return "weather"
    if adj and not _STYLE.search(y) and not re.search(r"\b(?:a|an)\s+\w+$", y):
        return "adjust"
    if _ENVIRONMENT.search(y) and not _STYLE.search(y):
        return "environment"
    if re.match(r"^(?:look|looks|appear|appears|seem|seems|be|feel)\b", y):
        if _WEATHER.search(y):
            return "weather"
        if _STYLE.search(y):
            return "style"
    if _WEATHER.search(y) and not _MATERIAL.search(y) and not re.search(r"\b(?:hat|coat|umbrella|jacket)\b", y):
        return "weather"
    if _STYLE.search(y) and not re.search(r"^(?:a|an)\s+(?:\w+\s+)?(?:photo|picture|poster|painting)\s+of\b", y):
        return "style"
    core = re.sub(r"^(?:a|an|the|some|into|to|in|more|less|very|much|slightly|bright|light|dark|"
                  r"deep|pale|soft|vivid|solid|rich|warm|cool|shade of|shades of|gradient of|"
                  r"shade|color|colour)\s+", "", y)
    if _COLOUR.search(y) and (len(y.split()) <= 5 or _COLOUR_WORDS.search(y)) and not re.search(
            r"\b(?:car|bus|truck|dog|cat|bird|tiger|horse|apple|flower|house|hat|shirt|dress|"
            r"ball|balloon|umbrella|boat|bag)s?\b", core):
        return "colour"
    if _MATERIAL.search(y):
        return "material"
    if re.match(r"^(?:run|jump|fly|smile|laugh|cry|sit|stand|walk|dance|swim|sleep|wave|look|frown|"
                r"raise|lift|lower|kneel|turn (?:his|her|its|their)|open (?:his|her|its|their)|"
                r"close (?:his|her|its|their)|hold up|bow|sing|eat|drink|hug|kiss|gallop|climb|"
                r"roar|bark|play|ride)\b", y):
        return "action"
    if _SCENE.search(y) and re.match(r"^(?:a |an |the )?(?:\w+ )?(?:\w+ )?(?:" + SCENES + r")\b", y):
        return "scene"
    if re.match(r"^(?:a|an|the|some|one|two|three|several|many)\b", y) or len(y.split()) <= 3:
        if re.match(r"^(?:older|younger|old|young|happy|sad|angry|bigger|smaller|larger|taller|"
                    r"shorter|open|closed|fat|thin|wet|dry|cold|hot|frozen|broken|new|clean|dirty|"
                    r"glow|glowing|shine|shiny|transparent|invisible|bald|long|short|curly|"
                    r"straight|messy|tidy|fluffier|emotive|realistic|cute|scary|creepy)\b", y):
            return "attribute"
        return "object"
    return "attribute"


def _adjust_match(text: str) -> _Adjust | None:
    for adj in _ADJUSTMENTS:
        if adj.pattern.search(text):
            return adj
    return None


@lru_cache(maxsize=1)
def _has_tool(name: str) -> bool:
    from imagent.tools.registry import default_registry  # lazy: imports the tools

    return name in default_registry().names()


def _global_ops() -> frozenset[str]:
    """The operations global_edit accepts now (read from the registry's schema, once)."""
    from imagent.tools.registry import default_registry  # lazy: imports the tools

    schema = default_registry().spec("global_edit").args_model.model_json_schema()
    prop = schema.get("properties", {}).get("operation", {})
    enum = prop.get("enum")
    if enum is None and "$ref" in prop:
        enum = schema.get("$defs", {}).get(prop["$ref"].split("/")[-1], {}).get("enum")
    if enum is None:
        for sub in prop.get("anyOf", []) + prop.get("allOf", []):
            enum = enum or sub.get("enum")
    return frozenset(enum or _BASE_AMOUNT)


# ----------------------------------------------------------------------------- step builders
def _referent(t: _Target) -> R.Referent:
    """The typed referent of a target: the ground phrase read once by tools/referent.py, with
    the instance words the planner read around it (\"on the left\", \"the other one\")."""
    return R.parse(t.phrase or t.full, select=t.select,
                   ordinal=(t.index + 1) if t.index else None)


def _ground_calls(t: _Target) -> list[ToolCall]:
    return [ToolCall(name="ground", args={"phrase": t.phrase or t.full,
                                          "referent": _referent(t).to_args()})]


def _apply_other(t: _Target, ctx: PlanContext) -> _Target:
    """"the other dog": the candidate not used by the last step."""
    if not t.other:
        return t
    last = _last_edit_step(ctx)
    prev_sel = last.select if last else None
    if prev_sel in _OPPOSITE:
        t.select, t.index = _OPPOSITE[prev_sel], 0
    else:
        t.select, t.index = prev_sel or None, (last.index + 1) if last else 1
    if t.phrase in ("the one", "") and last and last.target:
        t.phrase = last.target
    return t


def _step_from_target(kind: str, t: _Target, **kw) -> Step:
    ref = _referent(t) if (t.phrase or t.full) else None
    return Step(kind=kind, target=t.phrase or None, target_full=t.full or None, select=t.select,
                index=t.index, referent=ref, **kw)


def _remove_step(t: _Target, ctx: PlanContext) -> Step:
    calls = _ground_calls(t) + [
        # A few pixels of dilation so the fill covers the object's anti-aliased edge.
        ToolCall(name="build_mask", args={"source": "detections", "index": 0, "dilate": 4, "feather": 0}),
        ToolCall(name="remove", args={"seed": ctx.seed}),
    ]
    return _step_from_target("remove", t, calls=calls, description=f"remove {t.full or t.phrase}")


def _extract_step(t: _Target, background: str | None = None) -> Step:
    args = {"background": background} if background else {}
    calls = _ground_calls(t) + [ToolCall(name="build_mask", args={"source": "detections", "index": 0}),
                                ToolCall(name="extract", args=args)]
    return _step_from_target("extract", t, calls=calls, description=f"cut out {t.full or t.phrase}")


def _fill_colour(word: str | None) -> str | None:
    """A colour the extract tool can fill with (a CSS name or #hex), or None."""
    if not word:
        return None
    from imagent.tools.insert import parse_color

    for c in (word.strip(), word.replace(" ", ""), word.split()[-1]):
        try:
            parse_color(c)
            return c
        except Exception:  # noqa: BLE001 - not a colour the tool knows: try the next spelling
            continue
    return None


def _flatten_step(colour: str) -> Step:
    """Fill the transparent part with ``colour``: the mask is the image's own alpha, and a
    cut-out onto a colour is opaque (the new version has no alpha)."""
    calls = [ToolCall(name="build_mask", args={"source": "alpha"}),
             ToolCall(name="extract", args={"background": colour})]
    return Step(kind="extract", calls=calls, color=colour,
                description=f"fill the transparent part with {colour}")


def _adjust_step(text: str, adj: _Adjust, region: _Target | None = None,
                 strength: float | None = None) -> Step:
    strength = _strength(text) if strength is None else strength
    op = adj.operation
    word = op.replace("_", " ")
    if adj.sign:
        desc = f"{'more' if adj.sign > 0 else 'less'} {word}"
    else:
        desc = word
    desc = {0.5: "a bit ", 2.0: "much "}.get(strength, "") + desc
    if op not in _global_ops():
        # Named, but the classical operation is not there: the instruction model does it.
        step = Step(kind="local" if region else "global", needs_model="instruct",
                    description=desc + (f" on {region.full}" if region else ""), strength=strength,
                    prompt=text)
        if region:
            step.target, step.target_full, step.select = region.phrase, region.full, region.select
        return step
    args: dict = {"operation": op}
    if op in _BASE_AMOUNT:
        args["amount"] = round(_BASE_AMOUNT[op] * strength * (adj.sign or 1), 4)
    if op == "blur":
        # the blur is given for a 512-px image and scales with the photo; a face, a person or a
        # licence plate is blurred to hide it, not to soften it
        args["value"] = 512
        if region is not None and _PRIVATE.search(region.phrase or ""):
            args["amount"] = round(args["amount"] * 4, 4)
        elif region is not None and re.search(r"\b(?:background|backdrop)\b", region.phrase or ""):
            args["amount"] = round(args["amount"] * 2.5, 4)  # a portrait's shallow depth of field
    if region is None:
        return Step(kind="global", calls=[ToolCall(name="global_edit", args=args)],
                    description=desc, strength=strength)
    args["region"] = "mask"
    calls = _ground_calls(region) + [
        ToolCall(name="build_mask", args={"source": "detections", "index": 0, "feather": 8}),
        ToolCall(name="global_edit", args=args)]
    kind = "background" if re.fullmatch(r"(?:the )?background", region.phrase or "") else "local"
    return _step_from_target(kind, region, calls=calls, description=f"{desc} on {region.full}",
                             strength=strength)


_PLAIN_COLOUR = _lazy(rf"^(?:(?:bright|dark|light|pale|deep)\s+)?(?:{COLOURS})$")


def _model_step(kind: str, role: str, description: str, t: _Target | None = None,
                prompt: str | None = None, place: str | None = None, color: str | None = None,
                strength: float = 1.0) -> Step:
    # "make the car blue": a plain colour change of a grounded object is the embedded
    # recolour tool's job (hue/saturation shift that keeps the luminance texture).
    if (kind == "local" and t is not None and (t.phrase or t.full) and prompt
            and _PLAIN_COLOUR.match(prompt.strip()) and _has_tool("recolor")):
        calls = _ground_calls(t) + [
            ToolCall(name="build_mask", args={"source": "detections", "index": 0, "feather": 2}),
            ToolCall(name="recolor", args={"color": prompt.strip()})]
        return _step_from_target("local", t, calls=calls, description=description, prompt=prompt,
                                 color=color, strength=strength)
    step = Step(kind=kind, needs_model=role, description=description, prompt=prompt or None,
                place=place, color=color, strength=strength)
    if t is not None and (t.phrase or t.full):
        step.target, step.target_full = t.phrase or None, t.full or None
        step.select, step.index = t.select, t.index
    return step


def _colour_of(text: str) -> str | None:
    m = _COLOUR.search(text)
    return m.group(0) if m else None


# ----------------------------------------------------------------------------- session words
_UNDO = _lazy(
    r"^(?:undo|revert|undo (?:that|it|this|the last (?:edit|change|step|one)|last(?: (?:edit|change|step))?|"
    r"my last (?:edit|change)|the (?:last|previous) (?:\w+ )?(?:edit|change|step)s?|the last (\w+) (?:edits|changes|steps)|"
    r"(\w+) (?:times|steps|edits|changes))|undo (\w+)|revert (?:that|it|this|the last (?:edit|change))|"
    r"take (?:that|it) back|go back(?: one step| a step)?|step back|back|oops|no,? undo(?: that)?|"
    r"cancel (?:that|the last (?:edit|change))|undo the last (\w+)|(?:i )?(?:don't|do not) like (?:it|that)"
    r"(?:,? undo(?: it)?)?|revert the last (?:edit|change)|roll back(?: (?:that|the last (?:edit|change)))?)$")
_REDO = _lazy(r"^(?:redo(?: (?:that|it|the last (?:edit|change)|(\w+) times|(\w+)))?|"
                   r"re-?apply (?:that|it)|bring (?:it|that) back|put (?:it|that) back)$")
_ORIGINAL = _lazy(r"^(?:(?:go back to|back to|revert to|revert back to|restore|return to|show "
                       r"(?:me )?|reset to|switch to|checkout|check out) (?:the )?original(?: (?:image|"
                       r"picture|photo|version))?|start over|start again|reset(?: (?:everything|it|all|"
                       r"the image))?|revert (?:everything|all(?: changes)?)|undo (?:everything|all"
                       r"(?: (?:edits|changes))?))$")
_CHECKOUT = _lazy(r"^(?:go back to|back to|checkout|check out|switch to|restore|return to|"
                       r"revert to|show me|show|jump to|open|use|load|go to)\s+(?:the\s+)?"
                       r"(?:version\s+|v\s*|step\s+|edit\s+)(#?\w+)(?: (?:again|please))?$|"
                       r"^(?:checkout|check out)\s+(#?\w+)$")
_HISTORY = _lazy(r"^(?:(?:show|list|print|display|give)(?: me)? (?:the |my |all )?(?:edit )?"
                      r"(?:history|log|versions|changes|edits)(?: so far)?|history|log|"
                      r"what (?:have (?:we|you|i) done|did (?:we|you|i) (?:do|change))(?: so far)?)$")
_COMPARE = _lazy(r"^(?:compare|diff|show (?:me )?(?:the )?(?:difference|diff|changes)|before and after|"
                      r"show (?:me )?(?:the )?before(?: and| &) after)(?:\s+(?:it |this )?(?:with|to|against|"
                      r"and|from)\s+(?:the\s+)?(?:version\s+|v)?(#?\w+))?(?:\s+(?:with|to|and)\s+(?:the\s+)?"
                      r"(?:version\s+|v)?(#?\w+))?$")


def _count(word: str | None) -> int:
    n = R.parse_number(word) if word else None
    return 1 if n is None else max(1, min(1000, n))


# ----------------------------------------------------------------------------- the planner
class _Ask(Exception):
    """A clause the rules cannot read: carries the question (and choices) to ask back."""

    def __init__(self, question: str, choices: list[str] | None = None) -> None:
        super().__init__(question)
        self.question = question
        self.choices = choices or []


def _last_edit_step(ctx: PlanContext) -> Step | None:
    if ctx.last_plan is None:
        return None
    for step in reversed(ctx.last_plan.steps):
        if not step.is_session:
            return step
    return None


class RulesPlanner:
    """Deterministic, fast, offline. See the module docstring for what it reads."""

    name = "rules"

    def plan(self, request: str, context: PlanContext | None = None) -> Plan:
        context = context or PlanContext()
        quotes = re.findall(r"[\"\u201c]([^\"\u201d]+)[\"\u201d]|(?<!\w)'([^']+)'(?!\w)", request or "")
        self._quotes = [a or b for a, b in quotes]
        text = _clean(request or "")
        if context.selection is not None:  # "remove this" with a box: "this" is the selection
            from imagent.planners.pointing import rewrite

            text = rewrite(text)
        if not text or not re.search(r"[a-z]", text):
            return Plan(question="The request is empty. What should I change in the image?",
                        choices=_CHOICES, planner=self.name)
        session = self._look(text)
        if session is not None:
            return session
        steps: list[Step] = []
        try:
            for clause in self._clauses(text):
                steps.extend(self._clause(clause, context, steps))
        except _Ask as ask:
            return Plan(question=ask.question, choices=ask.choices, planner=self.name)
        if not steps:
            return Plan(question=_question(text), choices=_CHOICES, planner=self.name)
        reply = "; ".join(s.description for s in steps)
        return Plan(steps=steps, reply=reply, planner=self.name)

    # -- clauses ----------------------------------------------------------------------
    def _clauses(self, text: str) -> list[str]:
        out: list[str] = []
        for i, sentence in enumerate(_SENTENCE.split(text)):
            sentence = sentence.strip(" .")
            if not sentence:
                continue
            parts = [c for c in _SPLIT.split(sentence) if c and c.strip(" ,.")]
            for j, part in enumerate(parts):
                part = _clean(part)
                if not part:
                    continue
                # A later sentence that is description, not an edit ("The lifeguard should be
                # wearing ..."): detail for the model, not a new step.
                if i > 0 and j == 0 and not re.match(rf"(?:{_SPLIT_VERBS}|{_V_ADD}|{_V_CHANGE})\b", part):
                    continue
                out.append(part)
        return out

    def _look(self, text: str) -> Plan | None:
        if _HISTORY.match(text):
            return Plan(action="history", reply="show the history of this session", planner=self.name)
        m = _COMPARE.match(text)
        if m and (m.group(0).startswith(("compare", "diff", "show", "before"))):
            a = (m.group(1) or "original").lstrip("#")
            b = (m.group(2) or "head").lstrip("#")
            a = "0" if a in ("original", "first", "root", "start") else a
            if m.group(2) is None:
                a, b = a, "head"
            return Plan(action="compare", action_args={"a": a, "b": b},
                        reply=f"compare version {a} with {b}", planner=self.name)
        return None

    def _clause(self, text: str, ctx: PlanContext, done: list[Step]) -> list[Step]:
        text = _QUALIFIER.sub("", text).strip(" ,.") or text
        for matcher in (self._session, self._reference):
            got = matcher(text, ctx, done)
            if got:
                return got
        step = self._edit(text, ctx, done)
        if step is None:
            raise _Ask(_question(text), _CHOICES)
        return [step]

    # -- session & references -----------------------------------------------------------
    def _session(self, text: str, ctx: PlanContext, done: list[Step]) -> list[Step] | None:
        m = _UNDO.match(text)
        if m:
            n = _count(next((g for g in m.groups() if g), None))
            return [Step(kind="undo", calls=[ToolCall(name="undo", args={"steps": n})],
                         description="undo the last edit" if n == 1 else f"undo the last {n} edits")]
        m = _REDO.match(text)
        if m:
            n = _count(next((g for g in m.groups() if g), None))
            return [Step(kind="redo", calls=[ToolCall(name="redo", args={"steps": n})], description="redo")]
        if _ORIGINAL.match(text):
            return [Step(kind="checkout", calls=[ToolCall(name="checkout", args={"version": "0"})],
                         description="go back to the original (version 0)")]
        m = _CHECKOUT.match(text)
        if m:
            ref = (m.group(1) or m.group(2)).lstrip("#")
            n = R.parse_number(ref)
            ref = str(n) if n is not None and not ref.isdigit() else ref
            if ref.isdigit() or re.fullmatch(r"[0-9a-f]{4,64}", ref) or ref in ("head", "root"):
                return [Step(kind="checkout", calls=[ToolCall(name="checkout", args={"version": ref})],
                             description=f"go to version {ref}")]
        return None

    def _reference(self, text: str, ctx: PlanContext, done: list[Step]) -> list[Step] | None:
        last = done[-1] if done and not done[-1].is_session else _last_edit_step(ctx)
        stronger = re.fullmatch(
            r"(?:(?:make it|do it|go) )?(?:(a bit|a little|slightly|much|even|a lot|way) )?"
            r"(?:stronger|more(?: of (?:that|it))?|further|harder|more intense|intensify(?: it| that)?|"
            r"increase it|boost it|not enough|(?:do it |apply it )?(?:again|once more|one more time)|"
            r"repeat(?: that| it)?|do that again|more please|even more)", text)
        weaker = re.fullmatch(
            r"(?:(?:make it|do it) )?(?:(a bit|a little|slightly|much|even|a lot) )?"
            r"(?:weaker|less(?: of (?:that|it))?|softer|subtler|more subtle|gentler|"
            r"tone it down|too much|(?:that's|that is|it's|it is) too (?:much|strong)|not so much|"
            r"(?:reduce|decrease) it|less please|dial it back|back off)", text)
        if not (stronger or weaker):
            m = re.fullmatch(r"(?:do |apply )?(?:the )?same(?: thing)?(?: edit)?\s*(?:to|for|with|on)\s+(.+)|"
                             r"(?:now |and )?(?:the )?(.+?) too|(?:do|apply) (?:it|that|this) (?:to|for|on) (.+)",
                             text)
            if not m or last is None:
                return None
            phrase = next(g for g in m.groups() if g)
            if m.group(2) and not re.match(rf"(?:the|{_DET})\b", phrase) and not last:
                return None
            if m.group(2) and re.match(rf"(?:{_V_REMOVE}|{_V_ADD}|{_V_CHANGE}|{_V_ADJUST})\b", phrase):
                return None
            t = _apply_other(_target(phrase, ctx), ctx)
            return [self._retarget(last, t, ctx)]
        if last is None:
            raise _Ask("Stronger or weaker than what? There is no earlier edit in this session to "
                       "refer to. What should I change?", _CHOICES)
        factor_word = (stronger or weaker).group(1)
        factor = 0.5 if factor_word in ("a bit", "a little", "slightly") else 1.0
        factor = 2.0 if factor_word in ("much", "a lot", "way") else factor
        if stronger:
            again = re.search(r"again|once more|one more time|repeat", text)
            return [self._scaled(last, 1.0 if again else 0.5 * factor, "again" if again else "more")]
        # weaker: step back to before the last edit and apply it at a lower strength
        undo = Step(kind="undo", calls=[ToolCall(name="undo", args={"steps": 1})],
                    description="undo the last edit")
        return [undo, self._scaled(last, 0.5 / factor if factor > 1 else 0.5 * (2 - factor) / 1.0 * 1.0
                                   if factor == 1 else 0.75, "less")]

    def _scaled(self, step: Step, factor: float, word: str) -> Step:
        calls = []
        for c in step.calls:
            args = dict(c.args)
            if c.name == "global_edit" and isinstance(args.get("amount"), (int, float)):
                args["amount"] = round(args["amount"] * factor, 4)
            calls.append(ToolCall(name=c.name, args=args))
        return step.model_copy(update={"calls": calls, "strength": round(step.strength * factor, 3),
                                       "description": f"{step.description} ({word})"})

    def _retarget(self, step: Step, t: _Target, ctx: PlanContext) -> Step:
        calls = []
        for c in step.calls:
            if c.name == "ground":
                calls.extend(_ground_calls(t))
            elif c.name == "remove":
                calls.append(ToolCall(name="remove", args={**c.args, "seed": ctx.seed}))
            else:
                calls.append(c)
        old = step.target_full or step.target or ""
        desc = step.description.replace(old, t.full or t.phrase) if old else f"{step.description} on {t.full}"
        kind = step.kind if step.kind != "global" else "local"
        return step.model_copy(update={"kind": kind, "target": t.phrase or None, "target_full": t.full or None,
                                       "select": t.select, "index": t.index, "calls": calls,
                                       "referent": _referent(t) if (t.phrase or t.full) else None,
                                       "description": desc})

    # -- edits ------------------------------------------------------------------------
    def _edit(self, text: str, ctx: PlanContext, done: list[Step]) -> Step | None:
        step = self._transparency(text, ctx, done)
        if step is not None:
            return step
        for matcher in (self._outpaint, self._extract, self._geometry, self._remove, self._replace,
                        self._text, self._add, self._move, self._change, self._adjust_verb,
                        self._declarative, self._nominal):
            step = matcher(text, ctx)
            if step is not None:
                return step
        return None

    def _it(self, phrase: str, ctx: PlanContext) -> _Target | None:
        """A pronoun object ("remove it") refers to the last step's target."""
        if re.fullmatch(r"(?:it|that|this|that one|this one|them|those|these)", phrase.strip()):
            last = _last_edit_step(ctx)
            if last is not None and last.target:
                return _Target(last.target, last.target_full or last.target, last.select, last.index)
            if phrase.strip() in ("them", "those", "these"):
                return _Target(phrase.strip(), phrase.strip())
            return None
        return _apply_other(_target(phrase, ctx), ctx)

    def _remove(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(r"^take (.+?) (?:out of|off(?: of)?|away from|from) (.+)$", text) or \
            re.match(r"^take (.+?) (?:away|out|off)()$", text)
        # "get the tourists out of the shot", "keep the cars out of the picture"
        m2 = re.match(r"^(?:get|keep|move|take) (.+?) out of (?:the )?(?:shot|picture|image|photo|frame|scene|view)$", text)
        if m2 and not _is_whole(m2.group(1)):
            return _remove_step(_apply_other(_target(m2.group(1)), ctx), ctx)
        if m and not _is_whole(m.group(1)):
            phrase = f"{m.group(1)} from {m.group(2)}" if m.group(2) else m.group(1)
            return _remove_step(_apply_other(_target(phrase), ctx), ctx)
        m = re.match(rf"^(?:{_V_REMOVE})\s+(.+)$", text)
        if not m:
            m = re.match(r"^(?:without|no more|no)\s+(?:the\s+)?(.+)$", text)
            if not m or _STYLE.search(text) or _adjust_match(text):
                return None
        obj = re.sub(r"\s+from (?:the )?(?:image|picture|photo|scene|shot|frame)\b.*$", "", m.group(1))
        obj = re.sub(r"^(?:both|all)\s+(?=the\b)", "", obj)
        if re.match(r"^(?:the )?(?:background )?(?:colou?rs?|saturation|noise|grain|haze|blur|"
                    r"colou?r cast)\b", obj):
            return None  # "remove the colour", "remove the background noise": an adjustment
        t = self._it(obj, ctx)
        if t is None or not (t.phrase or t.full):
            raise _Ask("What should I remove? Describe it (\"the man on the left\") or give a "
                       "place (\"the top-left corner\").")
        return _remove_step(t, ctx)

    def _transparency(self, text: str, ctx: PlanContext, done: list[Step]) -> Step | None:
        """A cut-out of the subject ("remove the background": ``_CUTOUT``), or filling an
        existing transparency in ("add a white background": ``_FLATTEN_*``)."""
        for rx in _CUTOUT:
            m = rx.match(text)
            if m is None:
                continue
            x = (m.groupdict().get("x") or "").strip()
            t = None if not x or _is_whole(x) else self._it(x, ctx)
            if t is None or not (t.phrase or t.full):
                step = _extract_step(_target(MAIN_SUBJECT))
                step.description = f"remove the background (cut out {MAIN_SUBJECT})"
                return step
            return _extract_step(t)
        last_cut = next((c for s in reversed(done) for c in reversed(s.calls) if c.name == "extract"), None)
        alpha = (last_cut.args.get("background", "transparent") == "transparent" if last_cut
                 else ctx.has_alpha)
        if alpha and any(rx.match(text) for rx in _RESTORE_IF_ALPHA):
            calls = [ToolCall(name="build_mask", args={"source": "full"}),
                     ToolCall(name="extract", args={})]
            return Step(kind="extract", calls=calls,
                        description="bring the background back (opaque, the original pixels)")
        for rx in _FLATTEN_ALWAYS + (_FLATTEN_IF_ALPHA if alpha else []):
            m = rx.match(text)
            if m is None:
                continue
            colour = _fill_colour(m.groupdict().get("c"))
            if colour is None and rx in _FLATTEN_IF_ALPHA:
                return None
            if alpha is False:
                raise _Ask("This image has no transparent part to fill in. What should I change?",
                           _CHOICES)
            return _flatten_step(colour or "white")
        return None

    def _extract(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^(?:{_V_EXTRACT})\s+(.+)$", text)
        if not m:
            return None
        obj = m.group(1)
        bg = None
        mb = re.search(r"\s+(?:on|onto|over|with|against) (?:a |an )?(\w+) background$", obj)
        if mb and _COLOUR.fullmatch(mb.group(1)):
            bg = mb.group(1) if mb.group(1) not in ("golden",) else None
            obj = obj[: mb.start()]
        obj = re.sub(r"\s+from (?:the )?(?:image|picture|photo|scene|background)\b.*$", "", obj)
        t = self._it(obj, ctx)
        if t is None or not (t.phrase or t.full):
            raise _Ask("What should I cut out? Describe the object, e.g. \"the dog\".")
        return _extract_step(t, bg)

    def _outpaint(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^(?:{_V_OUTPAINT})\b\s*(.*)$", text)
        m2 = re.match(r"^(?:make|turn) (?:it|the (?:image|picture|photo|canvas|frame)) (?:wider|taller|"
                      r"\d+\s*(?:%|percent) (?:wider|taller|bigger)|(?:into |to )?(?:a )?(?:panorama|"
                      r"\d+\s*[:x]\s*\d+)|bigger canvas|square)|^(?:outpaint|uncrop)\b", text)
        if not (m or m2):
            return None
        if m and not m2:
            rest = m.group(1)
            if re.match(r"^(?:the|a|an|his|her|their|its)\s+(?!image|picture|photo|canvas|frame|scene|view|"
                        r"borders?|edges?|sides?|left|right|top|bottom|background|shot|whole|entire|width|height)", rest):
                return None
            # "extend the table" is an object edit; the canvas, sides and amounts are outpainting
            if rest and not re.search(r"\b(?:image|picture|photo|canvas|frame|it|scene|view|left|right|"
                                      r"top|bottom|sides?|all|upwards?|downwards?|up|down|horizontally|"
                                      r"vertically|\d+\s*(?:px|pixels?|%|percent)|\d+\s*[:x]\s*\d+|"
                                      r"panorama|wider|taller|border|edges?|around)\b", rest):
                return None
        sides = [s for s in ("left", "right", "top", "bottom") if re.search(rf"\b{s}\b", text)]
        if re.search(r"\bupwards?\b|\bup\b|\babove\b", text) and "top" not in sides:
            sides.append("top")
        if re.search(r"\bdownwards?\b|\bdown\b|\bbelow\b", text) and "bottom" not in sides:
            sides.append("bottom")
        if re.search(r"\b(?:all (?:sides|around|directions|edges)|every side|each side|around|"
                     r"in every direction|all four sides)\b", text):
            sides = ["left", "right", "top", "bottom"]
        elif re.search(r"\b(?:wider|horizontally|both sides|sideways|panorama|width)\b", text) and not sides:
            sides = ["left", "right"]
        elif re.search(r"\b(?:taller|vertically|height)\b", text) and not sides:
            sides = ["top", "bottom"]
        args: dict = {"seed": ctx.seed}
        aspect = re.search(r"\b(\d{1,2}(?:\.\d+)?)\s*[:x×/]\s*(\d{1,2}(?:\.\d+)?)\b", text)
        px = re.search(r"\b(\d+)\s*(?:px|pixels?)\b", text)
        pct = re.search(r"\b(\d+(?:\.\d+)?)\s*(?:%|percent|per cent)", text)
        if aspect is None and re.search(r"\bsquare\b", text):
            aspect = re.match(r"(1):(1)", "1:1")
        if aspect and not px and not pct:
            args["aspect"] = f"{aspect.group(1)}:{aspect.group(2)}"
            if sides:
                args["sides"] = sides
            desc = f"extend to {args['aspect']}"
        else:
            sides = sides or ["left", "right", "top", "bottom"]
            if px:
                for s in sides:
                    args[s] = min(int(px.group(1)), 20000)
                desc = f"extend {', '.join(sides)} by {px.group(1)} px"
            else:
                base = 25.0 * _strength(text) if not pct else float(pct.group(1))
                args["percent"] = max(0.5, min(400.0, base))
                args["sides"] = sides
                desc = f"extend {', '.join(sides)} by {args['percent']:g} %"
        return Step(kind="outpaint", calls=[ToolCall(name="outpaint", args=args)], description=desc,
                    place=",".join(sides) if sides else None, prompt=_outpaint_prompt(text))

    def _geometry(self, text: str, ctx: PlanContext) -> Step | None:
        if re.match(r"^(?:flip|mirror)\b", text) and _is_whole(re.sub(r"^(?:flip|mirror)\s*|\s*(?:horizontally|"
                    r"vertically|upside down|left to right|top to bottom|sideways|left-right|"
                    r"up-down)\s*$", "", text)):
            vertical = re.search(r"\b(?:vertical(?:ly)?|upside down|top to bottom|up-down)\b", text)
            op = "flip_vertical" if vertical else "flip_horizontal"
            return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": op})],
                        description=op.replace("_", " "))
        if re.fullmatch(r"(?:turn |make |put |flip )?(?:it|the (?:image|picture|photo) )?\s*upside down", text):
            return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": "rotate", "value": 180.0})],
                        description="rotate 180°")
        m = re.match(r"^(?:rotate|turn|spin)\b(?: (?:it|the (?:image|picture|photo)|this))?(?: by)?\s*"
                     r"(?:(-?\d+(?:\.\d+)?)\s*(?:°|degrees?|deg)?)?\s*(.*)$", text)
        if m and (text.startswith("rotate") or m.group(1)) and _is_whole(re.sub(
                r"\b(?:counter[- ]?clockwise|anti[- ]?clockwise|clockwise|to the (?:left|right)|left|"
                r"right|by|degrees?|a quarter turn|quarter|turn|half|°|\d+)\b", "", m.group(2)).strip()):
            if m.group(1):
                angle = float(m.group(1))
            elif re.search(r"\bhalf\b", text):
                angle = 180.0
            elif re.search(r"\b(?:counter[- ]?clockwise|anti[- ]?clockwise|left)\b", text):
                angle = 90.0
            else:
                angle = -90.0  # "rotate it" / "rotate right" / "clockwise": a quarter turn clockwise
            if re.search(r"\bclockwise\b", text) and not re.search(r"\b(?:counter|anti)[- ]?clockwise\b", text):
                angle = -abs(angle)
            return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": "rotate", "value": angle})],
                        description=f"rotate {angle:g}°")
        m = re.match(r"^(?:resize|scale|shrink|downscale|upscale|enlarge)(?: (?:it|the (?:image|picture|photo)))?"
                     r"(?: (?:to|by))?\s*(.*)$", text)
        if m and not re.search(r"\b(?:the|a)\s+(?!image|picture|photo)\w+", m.group(1)):
            rest = m.group(1)
            args: dict = {"operation": "resize"}
            w = re.search(r"(\d+)\s*(?:px|pixels?)?\s*(?:wide|width|w\b)", rest) or re.search(r"width (?:of )?(\d+)", rest)
            h = re.search(r"(\d+)\s*(?:px|pixels?)?\s*(?:tall|high|height|h\b)", rest) or re.search(r"height (?:of )?(\d+)", rest)
            wh = re.search(r"(\d+)\s*[x×]\s*(\d+)", rest)
            pct = re.search(r"(\d+(?:\.\d+)?)\s*(?:%|percent)", rest)
            if wh:
                args["width"], args["height"] = int(wh.group(1)), int(wh.group(2))
            elif w or h:
                if w:
                    args["width"] = int(w.group(1))
                if h:
                    args["height"] = int(h.group(1))
            elif pct:
                args["amount"] = max(0.01, min(8.0, float(pct.group(1)) / 100.0))
            elif re.search(r"\bhalf\b", rest):
                args["amount"] = 0.5
            elif re.search(r"\b(?:double|twice)\b", rest):
                args["amount"] = 2.0
            else:
                raise _Ask("Resize to what size? Give a width (\"800 px wide\"), both sides "
                           "(\"800x600\") or a percentage (\"50 %\").")
            return Step(kind="global", calls=[ToolCall(name="global_edit", args=args)], description="resize")
        m = re.match(r"^crop\b(.*)$", text)
        if m:
            box = re.search(r"(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)", m.group(1))
            if box:
                b = [int(v) for v in box.groups()]
                return Step(kind="global", calls=[ToolCall(name="global_edit", args={"operation": "crop", "box": b})],
                            description=f"crop to {b}")
            raise _Ask("Crop to which part? Give a box (\"crop to 10,10,400,300\" = x0,y0,x1,y1).")
        return None

    def _replace(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^(?:{_V_REPLACE})\s+(.+)$", text)
        if not m:
            m2 = re.match(r"^(?:(?:have|put|use|want|i want) )?(.+?)\s+instead(?: of (.+))?$", text)
            if m2 and m2.group(2) and not _WEATHER.search(text) and not re.match(
                    rf"(?:{_V_CHANGE}|{_V_ADD}|{_V_REMOVE})\b", m2.group(1)):
                return self._replace_xy(m2.group(2), m2.group(1), ctx)
            return None
        rest = m.group(1)
        if re.match(r"^(?:it )?(?:with|by|for|to|into)\s+", rest):
            y = re.sub(r"^(?:it )?(?:with|by|for|to|into)\s+", "", rest)
            return _model_step("global", "instruct", f"replace it with {y}", prompt=y)
        m = re.match(r"^(.+?)\s+(?:with|by|for|to|into)\s+(.+)$", rest)
        if not m:
            t = self._it(rest, ctx)
            if rest.strip() in ("it", "this", "that") or t is None:
                raise _Ask("Replace it with what? Say \"replace the cat with a dog\".")
            return _model_step("replace", "inpaint", f"replace {rest}", t)
        x, y = m.group(1), m.group(2)
        if re.fullmatch(r"(?:it|this|everything)", x.strip()):
            return _model_step("global", "instruct", f"turn it into {y}", prompt=y)
        return self._replace_xy(x, y, ctx)

    def _replace_xy(self, x: str, y: str, ctx: PlanContext) -> Step:
        t = self._it(x, ctx) or _target(x)
        if _is_env(x) or (_is_scene(x) and (_is_scene(y) or _is_env(y))):
            if re.fullmatch(r"(?:the |this )?(?:background|backdrop|setting|environment|scenery|surroundings)s?",
                            t.phrase or ""):
                t = _target("the background")
            return _model_step("background", "inpaint", f"change {t.full} to {y}", t, prompt=y)
        return _model_step("replace", "inpaint", f"replace {t.full} with {y}", t, prompt=y)

    def _text(self, text: str, ctx: PlanContext) -> Step | None:
        """Writing text ("add the caption 'hello' at the bottom"): the embedded insert tool."""
        if not self._quotes or not re.match(r"^(?:add|write|put|place|insert|type|caption|label|"
                                            r"stamp|overlay|print)\b", text):
            return None
        if not re.search(r"\b(?:text|caption|title|words?|saying|says|label|write|type|quote|"
                         r"message|signature|watermark|heading|subtitle)\b", text):
            return None
        words = self._quotes[0]
        place = _place(text)
        calls: list[ToolCall] = []
        if place is not None:
            calls += [ToolCall(name="ground", args={"phrase": place}),
                      ToolCall(name="build_mask", args={"source": "detections", "index": 0})]
        colour = _colour_of(re.sub(r"[\"'][^\"']*[\"']", "", text))
        args: dict = {"kind": "text", "text": words}
        if colour and colour not in ("golden", "rainbow", "pastel", "neon", "colorful", "colourful",
                                     "multicolored", "multicoloured", "redder", "bluer", "greener",
                                     "yellower", "pinker", "blonde", "blond", "brunette"):
            args["color"] = colour
        calls.append(ToolCall(name="insert", args=args))
        return Step(kind="add", target=None, place=place, prompt=words, color=colour, calls=calls,
                    description=f"write \"{words}\"" + (f" in {place}" if place else ""))

    def _add(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^(?:{_V_ADD})\s+(.+)$", text)
        verb_give = re.match(r"^(?:give|gives|giving|equip|decorate|adorn|surround|wrap)\s+(.+)$", text)
        mc = re.match(r"^(?:cover|coat|fill|dress|paint|decorate|drape|sprinkle|top)\s+(.+?)\s+(with|in|as)\s+(.+)$", text)
        if mc:
            x, y = mc.group(1), mc.group(3)
            t = self._it(x, ctx) if x in ("it", "them") else _apply_other(_target(x), ctx)
            if t is None or _is_whole(x):
                return _model_step("global", "instruct", text, prompt=y)
            yk = _y_kind(y)
            kind = "local" if yk in ("colour", "material", "weather", "style", "attribute") or text.startswith(
                ("paint", "cover", "coat")) and yk != "object" else "add"
            if text.startswith("dress"):
                kind = "add"
            return _model_step(kind, "inpaint", f"{text.split()[0]} {t.full} {mc.group(2)} {y}", t, prompt=y,
                               color=_colour_of(y))
        if verb_give:
            return self._give(text, verb_give.group(1), ctx)
        m_with = re.match(r"^with\s+(.+)$", text)
        if not m and not m_with:
            return None
        verb = text.split()[0]
        what = (m or m_with).group(1)
        what = re.sub(r"^(?:in|to)\s+(?=(?:a|an|some)\b)", "", what)
        # "add more contrast", "add a vintage filter": an adjustment or style, not an object
        adj = _adjust_match(what)
        if adj and re.match(r"^(?:(?:a|an|some|more|extra|bit|of|little|touch|much|lot|slight|subtle|"
                            r"strong|the)\s+)*(?:contrast|brightness|saturation|warmth|exposure|"
                            r"sharpness|blur|sepia|black and white|vignette|light|lighting|colou?r|"
                            r"vibrance|punch|noise|grain|warm|cool|bright|dark)\b", what):
            return _adjust_step(text, adj)
        if re.search(r"\b(?:look|effect|filter|tone|feel|finish|style|vibe|mood|atmosphere|aesthetic)$", what) \
                or re.match(r"^(?:a |an |some )?(?:\w+ )?(?:style|filter|effect)\b", what):
            a2 = _adjust_match(what)
            if a2:
                return _adjust_step(text, a2)
            return _model_step("global", "instruct", f"{verb} {what}", prompt=what)
        if verb in ("show", "feature", "depict", "stand", "set", "pop", "float", "park", "seat",
                    "perch", "bring", "cover", "fill") and not re.match(
                        rf"^(?:{_DET}|more)\b", what):
            return None
        if verb in ("set", "put", "place", "position", "bring", "stand") and re.match(
                r"^(?:it|this|him|her|them|the (?:scene|image|picture|photo|setting|story|action))\b", what):
            return None  # "put it in the desert": a move (background), below
        if verb == "show" and re.match(r"^(?:me|the (?:history|log))\b", what):
            return None
        what = _strip_image_tail(what)
        obj, where = _split_place(what)
        anchor, place = _anchor(where)
        # weather as an "addition" ("add a dark stormy night", "add rain"): a global edit
        core = re.sub(r"^(?:a|an|some|more|the)\s+", "", obj)
        if _WEATHER.search(core) and not anchor and not _place(what) and not re.search(
                r"\b(?:umbrella|snowman|cloud of|coat|hat|boots|jacket|lamp|light|candle|moon|sun)\b", core) \
                and len(core.split()) <= 4:
            return _model_step("global", "instruct", f"{verb} {what}", prompt=what)
        if verb in ("put", "place", "position", "set", "stand", "seat", "lean", "hang", "park") and \
                re.match(r"^(?:the|his|her|their|its|this|that|these|those|him|her|them|[\w-]+'s)\b", obj) \
                and where:
            # "put the boy on the ground": a move of something already there
            t = _apply_other(_target(obj), ctx) if obj not in ("it", "them") else self._it(obj, ctx)
            if t is not None:
                if anchor and (_is_scene(anchor) or _is_env(anchor)) and not re.match(r"^(?:the|his|her|their|its)\b", anchor):
                    return _model_step("background", "inpaint", f"put {obj} {where}", t, prompt=where,
                                       place="background")
                return self._move_step(obj, where, ctx)
        t = None
        if anchor:
            t = self._it(anchor, ctx) if anchor.strip() in ("it", "them") else _apply_other(_target(anchor), ctx)
        if (obj.strip() in ("it", "this", "that", "") and verb in ("put", "place", "move", "position")
                and t is not None and _is_scene(anchor)):
            return _model_step("background", "inpaint", f"put it in {anchor}", _target("the background"),
                               prompt=anchor)
        if not obj.strip():
            raise _Ask("What should I add, and where? e.g. \"add a red hat to the man on the left\".")
        step = _model_step("add", "inpaint", f"add {obj}" + (f" {where}" if where else ""), t,
                           prompt=obj, place=place, color=_colour_of(obj))
        return step

    def _give(self, text: str, rest: str, ctx: PlanContext) -> Step | None:
        """"give him a mustache" (add), "give it a warmer look" (adjust), "give the car a blue
        paint job" (local colour)."""
        x, y = _np_then_rest(rest)
        if _is_whole(x) or x in ("me",):
            adj = _adjust_match(y)
            if adj:
                return _adjust_step(text, adj)
            return _model_step("global", "instruct", f"give it {y}", prompt=y)
        t = self._it(x, ctx) if x.strip() in ("it", "them", "this") else _apply_other(_target(x), ctx)
        kind = _y_kind(y)
        if kind in ("colour", "material") and re.search(r"\b(?:hair|fur|skin|colou?r|coat|paint|finish|"
                                                          r"texture|look|shade|tone|makeover|surface)\b", y):
            return _model_step("local", "inpaint", f"give {t.full} {y}", t, prompt=y, color=_colour_of(y))
        if kind == "adjust":
            return _adjust_step(text, _adjust_match(y), region=t)
        if kind in ("style",):
            return _model_step("local", "instruct", f"give {t.full} {y}", t, prompt=y)
        return _model_step("add", "inpaint", f"give {t.full} {y}", t, prompt=y, color=_colour_of(y))

    def _move(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^(?:{_V_MOVE}|put|place|set|position|transport|bring|stand|take)\s+(.*)$", text)
        if not m:
            m = re.match(r"^(?:in|into|inside|at|on|to|within|under|underwater|amid|amidst)\s+(?:a|an|the|some)?\s*(.+)$", text)
            if m and (_is_scene(text) or _is_env(text) or re.search(r"\b(?:in|at) (?:a|an|the)\b", text)) \
                    and not _STYLE.search(text):
                return _model_step("background", "inpaint", f"set it {text}", _target("the background"),
                                   prompt=text)
            return None
        rest = m.group(1)
        if not rest:
            return None
        if re.match(r"^(?:in|into|to|inside|at|on|onto|under)\b", rest):
            rest = "it " + rest
        mm = re.match(r"^(?:(.+?)\s+)?(?:in|into|inside|to|onto|on|at|under|underwater|in front of|"
                      r"near|next to|outside|outdoors|indoors|through|across|back to)\b\s*(.*)$", rest)
        if not mm:
            if re.fullmatch(r"(?:outside|outdoors|indoors|inside|underwater|upstairs|downstairs)", rest):
                return _model_step("background", "inpaint", f"move {rest}", _target("the background"), prompt=rest)
            return None
        x, dest = (mm.group(1) or "it"), mm.group(2)
        dest_is_scene = _is_scene(dest) or _is_env(dest) or re.search(
            r"\b(?:[A-Z]\w+|space|paris|tokyo|london|new york|rome|egypt|china|japan|africa|"
            r"india|sweden|italy|france|mars|heaven|hell|the past|the future|\d{4}s?)\b", dest)
        if _WEATHER.search(dest) and not _is_scene(dest):
            return None  # "set this to a snowy day": a global edit, below
        if _is_whole(x) or _is_person_pronoun(x) or re.match(r"^(?:the )?(?:scene|story|action|setting)", x):
            if dest_is_scene or not _place(dest):
                # the subject stays, the surroundings change: ground the subject, keep it
                keep = _Target(x, x) if _is_person_pronoun(x) else _target("the background")
                return _model_step("background", "inpaint", f"move {x} to {dest}", keep,
                                   prompt=dest, place="background")
        if re.match(r"^(?:the|his|her|their|its|this|that)\b", dest) and not _is_env(dest) and \
                text.split()[0] not in ("take", "send", "transport", "teleport"):
            return self._move_step(x, rest[len(x):].strip() if mm.group(1) else rest, ctx)
        if dest_is_scene and not _is_scene(x) and re.match(r"^(?:the|this|that|his|her|their|its)\b", x):
            # "place the pineapple on a sandy beach": the object stays, the surroundings change
            return _model_step("background", "inpaint", f"put {x} in {dest}", _apply_other(_target(x), ctx),
                               prompt=dest, place="background")
        if text.split()[0] in ("move", "relocate", "shift", "drag", "carry", "take", "bring", "put",
                               "place", "set", "position", "stand"):
            return self._move_step(x, rest[len(x):].strip() if mm.group(1) else rest, ctx)
        return None

    def _move_step(self, obj: str, where: str, ctx: PlanContext) -> Step:
        """"move the car under the bridge": an insertion at a place; like ``add``, the target
        is what the place is relative to (the bridge), the moved thing is the prompt."""
        anchor, place = _anchor(re.sub(r"^(?:just|right|directly|slightly|a bit)\s+", "", where))
        moved = self._it(obj, ctx) if obj in ("it", "them", "this") else _apply_other(_target(obj), ctx)
        if anchor:
            t = self._it(anchor, ctx) if anchor in ("it", "them") else _apply_other(_target(anchor), ctx)
        else:
            t = moved
        return _model_step("add", "inpaint", f"move {obj} {where}".strip(), t, prompt=obj, place=place or where)

    def _change(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^({_V_CHANGE})\s+(.+)$", text)
        if not m:
            return None
        verb, rest = m.group(1), m.group(2)
        rest = re.sub(r",?\s+instead(?: of [^,]+)?$", "", rest)
        if (verb in ("have", "let", "get") and re.match(r"^(?:a|an|some|more|several|two|three|many)\b", rest)) \
                or (verb in ("make", "let", "have") and re.match(r"^there (?:be|is|are)\s", rest)):
            return self._add("add " + re.sub(r"^there (?:be|is|are)\s+", "", rest), ctx)
        mf = re.match(r"^(?:(.+?)\s+on fire|fire to (.+))$", rest)
        if verb in ("set", "put") and mf:
            x = mf.group(1) or mf.group(2)
            if _is_whole(x):
                return _model_step("global", "instruct", "set it on fire", prompt="on fire")
            t = _apply_other(_target(x), ctx)
            return _model_step("local", "instruct", f"set {t.full} on fire", t, prompt="on fire")
        if verb == "give" and (mg := re.match(r"^(.+?)\s+to\s+(.+)$", rest)):
            t = _apply_other(_target(mg.group(2)), ctx)
            return _model_step("add", "inpaint", f"give {mg.group(1)} to {t.full}", t, prompt=mg.group(1))
        # Pose and action edits: "raise the person's left arm", "let the horse run"
        if verb in ("let", "have", "make", "get") or _BODY.search(rest):
            act = self._action(verb, rest, ctx)
            if act is not None:
                return act
        x, y, frm = _split_xy(verb, rest)
        if x is None:
            return None
        return self._classify(text, verb, x, y, frm, ctx)

    def _action(self, verb: str, rest: str, ctx: PlanContext) -> Step | None:
        m = re.match(r"^((?:the |a |an |his |her |their |its |this |that )?(?:[\w'-]+\s+){0,3}?)"
                     r"(run|running|jump|jumping|fly|flying|smile|smiling|laugh|laughing|cry|crying|sit|"
                     r"sitting|stand|standing|walk|walking|dance|dancing|swim|swimming|sleep|sleeping|"
                     r"wave|waving|look|looking|frown|frowning|wink|winking|kneel|kneeling|lie|lying|"
                     r"bow|bowing|sing|singing|eat|eating|drink|drinking|hug|hugging|kiss|kissing|"
                     r"gallop|galloping|climb|climbing|roar|roaring|bark|barking|fight|fighting|play|"
                     r"playing|ride|riding|raise|raising|lift|lifting|lower|lowering|turn|turning|"
                     r"tilt|tilting|open|opening|close|closing|cross|crossing|point|pointing|hold|"
                     r"holding|wear|wearing|carry|carrying|face|facing|lean|leaning|wag|wagging|"
                     r"hop|hopping|stare|staring|yawn|yawning|crouch|crouching|squat|squatting|"
                     r"pose|posing|move|moving|shake|shaking|nod|nodding|stretch|stretching|glance)"
                     r"\b\s*(.*)$", rest)
        if not m or not m.group(1).strip():
            if _BODY.search(rest) and verb in ("raise", "lift", "lower", "turn", "tilt", "bend", "open", "close"):
                subj = re.match(r"^(.+?)'s?\b", rest)
                t = _target(subj.group(1) if subj else rest)
                return _model_step("local", "instruct", f"{verb} {rest}", t, prompt=f"{verb} {rest}")
            return None
        subj, act, obj = m.group(1).strip(), m.group(2), m.group(3)
        if _is_whole(subj) and act not in ("wear", "wearing", "hold", "holding"):
            return None
        if act in ("wear", "wearing", "hold", "holding", "carry", "carrying"):
            t = self._it(subj, ctx) if subj in ("it", "them") else _apply_other(_target(subj), ctx)
            if re.search(r"^(?:\w+\s+)?(?:" + COLOURS + r")$", obj.strip()):
                return _model_step("local", "inpaint", f"{subj} {act} {obj}", t, prompt=obj, color=_colour_of(obj))
            return _model_step("add", "inpaint", f"{subj} {act} {obj}", t, prompt=obj, color=_colour_of(obj))
        if act in ("look",) and re.match(r"^(?:like|as if|more|less|older|younger|\w+er\b|happ|sad|angr)", obj):
            return None  # "make it look like a painting" / "look older": an appearance, below
        if act in ("turn", "open", "close", "cross", "face", "move", "lower", "raise", "lift", "hold",
                   "point", "tilt", "stretch", "shake") and not (_BODY.search(obj) or not obj or re.match(
                       r"^(?:to the|left|right|up|down|around|away|towards|toward|back|forward|sideways)", obj)):
            return None
        t = _apply_other(_target(subj), ctx) if subj not in ("it", "them") else (self._it(subj, ctx) or _target(subj))
        return _model_step("local", "instruct", f"{subj} {act} {obj}".strip(), t, prompt=f"{act} {obj}".strip())

    def _classify(self, text: str, verb: str, x: str, y: str, frm: str | None, ctx: PlanContext) -> Step | None:
        y = y.strip(" ,.")
        x = x.strip(" ,.")
        whole = _is_whole(x)
        yk = _y_kind(y) if y else "none"
        strength = _strength(text)
        # the colour/texture of an object named through "the colour of X", "X's fur colour"
        xs = _strip_image_tail(x)
        if re.search(r"\b(?:background|backdrop|setting|environment|scenery|surroundings|landscape)s?"
                     r"(?: colou?r| area| image| scene)?$", xs) and not (yk == "weather" and re.match(
                         r"^(?:the )?(?:setting|scene|environment|landscape)$", xs)):
            head = _head_np(xs)
            bg = re.fullmatch(r"(?:the |this |that )?(?:[\w-]+ )*?(?:background|backdrop|setting|environment|"
                              r"scenery|surroundings|landscape)s?(?: colou?r| area| image| scene)?", head)
            t = _target("the background") if bg and not re.search(r"\b(?:in|on|of)\b", head) \
                else _apply_other(_target(xs), ctx)
            return _model_step("background", "inpaint", f"change {xs} to {y}", t, prompt=y, place="background")
        mp = re.match(r"^(.+?)'s?\s+(?:[\w-]+\s+)?(colou?rs?|texture|material|pattern|finish|surface|"
                      r"fur|skin|shell|wool|feathers|paint(?:work| job)?|hue|shade|tone)(?:\s+colou?r)?$", x)
        if mp and not _is_whole(mp.group(1)) and not _is_env(mp.group(1)):
            t = _apply_other(_target(mp.group(1)), ctx)
            return _model_step("local", "inpaint", f"change the {mp.group(2)} of {t.full} to {y}", t,
                               prompt=y, color=_colour_of(y))
        attr = re.match(r"^(?:the )?(?:(?:base|main|body|overall|surface|primary|background|fur|hair|skin|"
                        r"wall|shell|wool|feather|paint|exterior)\s+)?(colou?rs?|texture|material|"
                        r"pattern|finish|surface|shade|hue|tone|fur colou?r)\s+of\s+(.+)$", x)
        if attr:
            xo = attr.group(2)
            if _is_env(xo) or re.match(r"^(?:the )?(?:sky|background)\b", xo) and _is_env(x):
                return _model_step("background", "inpaint", f"change {x} to {y}", _target(xo), prompt=y)
            if _is_whole(xo):
                adj = _adjust_match(y) or _adjust_match(text)
                if adj:
                    return _adjust_step(text, adj)
                return _model_step("global", "instruct", text, prompt=y)
            t = _apply_other(_target(xo), ctx)
            return _model_step("local", "inpaint", f"change the {attr.group(1)} of {t.full} to {y}", t,
                               prompt=y, color=_colour_of(y))
        if yk == "weather" and re.match(r"^(?:the )?(?:setting|scene|environment)$", x):
            return _model_step("global", "instruct", f"make {x} {y}", prompt=y)
        if x in ("background", "the background") or re.search(r"\b(?:background|backdrop|setting|environment|"
                                                              r"scenery|surroundings)s?$", _head_np(x)):
            return _model_step("background", "inpaint", f"change {x} to {y}", _target("the background"
                               if re.search(r"\b(?:background|backdrop)\b", x) else x), prompt=y)
        if whole:
            if yk == "adjust" or (not y and _adjust_match(text)):
                return _adjust_step(text, _adjust_match(y) or _adjust_match(text))
            if yk == "environment" and re.search(r"\b(?:background|backdrop)\b", y):
                return _model_step("background", "inpaint", f"change the background to {y}",
                                   _target("the background"), prompt=y)
            if re.match(r"^(?:the )?sky$", x) and yk not in ("weather", "style", "none"):
                t = _target(x)
                return _model_step("background", "inpaint", f"change the sky to {y}", t, prompt=y)
            if not y:
                return None
            return _model_step("global", "instruct", f"{verb} {x} {y}".strip() if x else f"{verb} {y}",
                               prompt=y, strength=strength)
        t = self._it(x, ctx) if x in ("it", "them", "this", "that") else _apply_other(_target(x), ctx)
        if t is None:
            t = _target(x)
        x_scene = _is_scene(x) and not _PERSON.search(x)
        if yk == "none":
            if _adjust_match(verb + " " + x):
                return _adjust_step(text, _adjust_match(verb + " " + x))
            return None
        if yk == "adjust":
            adj = _adjust_match(y)
            if re.match(r"^(?:the )?(?:sky|scene|lighting|sunshine|sunlight|light|shadows|highlights|"
                        r"colou?rs|tones|overall)\b", t.phrase or "") and re.search(
                            r"\b(?:sunshine|sunlight|lighting|light|colou?rs|tones|overall|shadows|highlights)\b", x):
                return _adjust_step(text, adj)
            return _adjust_step(text, adj, region=t)
        if yk == "weather":
            if x_scene and not re.match(r"^(?:the )?(?:sky|scene|setting|weather)\b", x):
                if frm or re.search(r"\b(?:environment|setting|landscape|scene)\b", y):
                    return _model_step("background", "inpaint", f"change {t.full} to {y}", t, prompt=y)
            if re.match(r"^(?:the )?(?:sky|scene|setting|weather|time|season|day|lighting|atmosphere)\b", x) \
                    or x_scene:
                return _model_step("global", "instruct", f"make {x} {y}", prompt=y)
            return _model_step("local", "instruct", f"make {t.full} {y}", t, prompt=y)
        if yk == "environment" or (yk == "scene" and x_scene):
            return _model_step("background", "inpaint", f"change {t.full} to {y}", t, prompt=y)
        if yk == "colour":
            return _model_step("local", "inpaint", f"make {t.full} {y}", t, prompt=y, color=_colour_of(y),
                               strength=strength)
        if yk == "material":
            return _model_step("local", "inpaint", f"make {t.full} {y}", t, prompt=y)
        if yk == "style":
            return _model_step("local", "instruct", f"make {t.full} {y}", t, prompt=y)
        if yk in ("action",):
            return _model_step("local", "instruct", f"{t.full} {y}", t, prompt=y)
        if yk == "wear":
            return _model_step("add", "inpaint", f"{t.full} {y}", t, prompt=y, color=_colour_of(y))
        if yk == "attribute":
            return _model_step("local", "instruct", f"make {t.full} {y}", t, prompt=y)
        if yk == "scene" and verb not in ("make", "let", "have"):
            return _model_step("background", "inpaint", f"change {t.full} to {y}", t, prompt=y)
        # another object: a replacement
        return _model_step("replace", "inpaint", f"turn {t.full} into {y}", t, prompt=y)

    def _adjust_verb(self, text: str, ctx: PlanContext) -> Step | None:
        m = re.match(rf"^({_V_ADJUST})\b\s*(.*)$", text)
        adj = _adjust_match(text)
        if not m:
            lead = re.sub(r"^(?:(?:a bit|a little|slightly|much|way|even|a lot|far|somewhat|a tad|very)\s+)*", "", text)
            if adj and adj.pattern.match(lead) and len(text.split()) <= 6:
                return _adjust_step(text, adj)
            return None
        verb, rest = m.group(1), m.group(2)
        mn = re.match(r"^(?:the |its |the overall )?(brightness|contrast|saturation|exposure|warmth|sharpness|"
                      r"vibrance|colou?rs|colou?r saturation|blur)\b(.*)$", rest)
        if mn and (adj is None or not adj.pattern.search(verb + " " + mn.group(0))):
            up = verb in ("increase", "boost", "raise", "enhance", "intensify", "deepen", "amplify",
                          "strengthen", "heighten", "crank up", "bump up", "turn up", "pump up", "up", "tone up")
            down = verb in ("decrease", "reduce", "lower", "tone down", "turn down", "weaken", "dim", "mute", "fade")
            noun = {"sharpness": "sharpen", "vibrance": "saturation", "colors": "saturation",
                    "colours": "saturation", "color saturation": "saturation",
                    "colour saturation": "saturation"}.get(mn.group(1), mn.group(1))
            if (up or down) and noun in _BASE_AMOUNT:
                sign = 0 if noun in ("sharpen", "blur") else (1 if up else -1)
                if not (noun in ("sharpen", "blur") and down):
                    return _adjust_step(text, _Adjust(_p("x"), noun, sign))
        ms = re.match(r"^(?:the )?(?:size|scale|height|width) of\s+(.+)$", rest)
        if ms and not _is_whole(ms.group(1)):
            t = _apply_other(_target(ms.group(1)), ctx)
            return _model_step("local", "instruct", f"{verb} the size of {t.full}", t, prompt=f"{verb} size")
        if _BODY.search(rest) and verb in ("raise", "lower"):
            subj = re.match(r"^(.+?)'s?\b", rest)
            t = _target(subj.group(1) if subj else rest)
            return _model_step("local", "instruct", f"{verb} {rest}", t, prompt=f"{verb} {rest}")
        if adj is None:
            # "enhance the photo", "fix it", "improve the image": an automatic correction
            if verb in ("enhance", "fix", "correct", "improve", "balance", "normalize", "normalise",
                        "auto-correct", "autocorrect", "auto-enhance", "autoenhance") and _is_whole(
                            re.sub(r"\s+(?:a bit|slightly|please|overall|quality|colou?rs?)$", "", rest)) and \
                    not (verb in ("fix", "correct") and rest.strip() in ("it", "this", "that", "")):
                # ("fix this" says nothing about what is wrong: it gets a question back)
                return _adjust_step(text, _Adjust(_p("x"), "autocontrast"))
            return None
        targeted = verb in ("brighten", "darken", "lighten", "sharpen", "blur", "pixelate", "pixelize",
                            "pixelise", "censor", "anonymize", "anonymise", "soften", "saturate",
                            "desaturate", "dim", "warm", "cool", "invert", "fade", "mute")
        # "increase the brightness of the person in the center": only there; but "pixelate the
        # face on the left" is the face, and "on the left" only says which one
        mm = re.search(r"\b(?:of|on|in|for)\s+((?:the|his|her|their|its|this|that)\s+.+)$", rest)
        if mm and not _is_whole(mm.group(1)) and not (targeted and re.match(
                r"^(?:the|his|her|their|its|this|that)\s+(?!(?:brightness|contrast|colou?rs?|saturation|"
                r"exposure|sharpness|warmth|tones?|lighting|light)\b)\w", rest)):
            return _adjust_step(text, adj, region=_apply_other(_target(mm.group(1)), ctx))
        mm = re.match(r"^((?:the|his|her|their|its|this|that)\s+[\w' -]+?)(?:\s+(?:a bit|slightly|more|"
                      r"a little|much|a lot))?$", rest)
        if mm and targeted \
                and not _is_whole(mm.group(1)) and not re.search(r"\b(?:image|picture|photo|scene|shadows|highlights|colou?rs|tones)\b", mm.group(1)):
            return _adjust_step(text, adj, region=_apply_other(_target(mm.group(1)), ctx))
        return _adjust_step(text, adj)

    def _declarative(self, text: str, ctx: PlanContext) -> Step | None:
        """"it is now a sunrise", "the bride has a tail", "Mulan is a cowboy"."""
        m = re.match(r"^(.+?)\s+(is|are|was|were|has|have|should be|should have|becomes|become|looks|look|"
                     r"seems|appears|to be|be|being|gets|get|wears|wear|wearing|holds|holding)\s+(?:now\s+)?(.+)$",
                     text)
        if not m:
            m2 = re.match(r"^(it's|its|it is|this is|that's|there's|there is|there are|make it|image is|"
                          r"picture is|photo is)\s+(?:now\s+)?(.+)$", text)
            if not m2:
                return None
            subj, rel, y = "it", "is", m2.group(2)
        else:
            subj, rel, y = m.group(1), m.group(2), m.group(3)
        if len(subj.split()) > 6 or re.match(rf"^(?:{_V_CHANGE}|{_V_ADD}|{_V_REMOVE}|what|who|where|how|"
                                             rf"why|which|when|can|could|do|does|is|are)\b", subj):
            return None
        subj = re.sub(r"^(?:i want|i'd like|let|have|as if|as though|what if|if|imagine)\s+", "", subj)
        subj = re.sub(r"\s+(?:to|now)$", "", subj)
        if rel in ("has", "have", "should have", "wears", "wear", "wearing", "holds", "holding"):
            if _is_whole(subj):
                return _model_step("add", "inpaint", f"add {y}", prompt=y)
            t = _apply_other(_target(subj), ctx)
            return _model_step("add", "inpaint", f"{subj} {rel} {y}", t, prompt=y)
        return self._classify(text, "make", subj, y, None, ctx)

    def _nominal(self, text: str, ctx: PlanContext) -> Step | None:
        """Requests with no verb: "as a watercolor", "in the style of Monet", "more vaporwave",
        "night time", "a snowy day"."""
        t = re.sub(r"^(?:as|like|into|more like|more|less|in|with|a|an|the|some|now|even|much|"
                   r"rather|instead|another)\s+", "", text)
        adj = _adjust_match(text)
        if adj and not _STYLE.search(text):
            return _adjust_step(text, adj)
        if _STYLE.search(text) or _WEATHER.search(text) or re.match(
                r"^(?:as|like|more like|in the style of|in the manner of|as if|as though|by)\b", text):
            if re.match(r"^(?:in|at|inside|on)\s+(?:a|an|the)\b", text) and (_is_scene(t) or _is_env(t)) \
                    and not _WEATHER.search(text):
                return _model_step("background", "inpaint", f"set it {text}", _target("the background"), prompt=text)
            return _model_step("global", "instruct", text, prompt=text)
        if re.match(r"^(?:a |an |the )?(?:little |bit |lot |much )*(?:more|less|extra)\s+(\w+)", text):
            return _model_step("global", "instruct", text, prompt=text)
        if _is_scene(t) and re.match(r"^(?:in|at|on|inside|into|to|within)\b", text):
            return _model_step("background", "inpaint", f"set it {text}", _target("the background"), prompt=text)
        return None


# ----------------------------------------------------------------------------- helpers
_PLACE_PREP = (r"on top of|on the top of|at the top of|at the bottom of|in front of|in the front of|"
               r"in the middle of|in the center of|in the centre of|to the left of|to the right of|"
               r"on the left of|on the right of|on the left side of|on the right side of|"
               r"at the left of|at the right of|next to|close to|beside|behind|above|below|under|"
               r"underneath|beneath|over|near|by|around|among|between|inside|within|into|onto|"
               r"on|in|at|to|along|across|against|atop|upon|through|throughout|outside|from")
_SPLIT_PLACE = _lazy(rf"^(.+?)\s+((?:{_PLACE_PREP})\b.*)$")


def _split_place(what: str) -> tuple[str, str]:
    """"a red hat on the dog's head" -> ("a red hat", "on the dog's head")."""
    m = _SPLIT_PLACE.match(what)
    if not m:
        return what, ""
    obj, where = m.group(1), m.group(2)
    # "a cup of coffee", "a glass of milk": "of" is part of the object (never split on it)
    return obj.strip(" ,"), where.strip(" ,")


def _anchor(where: str) -> tuple[str | None, str | None]:
    """The object a place is relative to (grounded), and the place words.

    "on the table" -> ("the table", "on"); "in the top-right corner" -> (None, "top-right
    corner"); "to the left of them" -> ("them", "left of")."""
    if not where:
        return None, None
    where = re.sub(r"\s+(?:of|in|on) (?:the |this )?(?:image|picture|photo|scene|frame)\b.*$", "", where).strip()
    m = re.match(rf"^((?:{_PLACE_PREP}))\s+(.*)$", where)
    if not m:
        return None, where
    rel, rest = m.group(1), m.group(2)
    rest = re.sub(r"\s*,.*$", "", rest)
    # a relation word inside: "the top of the pot", "the left side of the table"
    mm = re.match(r"^(?:the |its |his |her |their )?(?:very )?(?:top|bottom|left|right|middle|center|centre|"
                  r"front|back|side|edge|corner|rear|end|base|surface|tip|foot|head)(?:\s+(?:side|part|edge|"
                  r"corner|half|section|area))?\s+of\s+(.+)$", rest)
    if mm:
        rest = mm.group(1)
    if _PLACE_ONLY.match(rest) or re.fullmatch(r"(?:the )?(?:sky|air|ground|floor|distance|horizon)", rest):
        return (rest if re.search(r"\b(?:sky|ground|floor|background|foreground)\b", rest) else None), \
            f"{rel} {rest}"
    if not re.match(rf"^(?:{_DET}|him|her|them|it|his|their|\w+'s)\b", rest) and len(rest.split()) > 3:
        return None, f"{rel} {rest}"
    if re.fullmatch(r"(?:it|the image|the picture|the photo|the scene|this)", rest):
        return None, None
    return rest, rel


def _place(text: str) -> str | None:
    """An image region named in text, as a phrase ground understands."""
    m = re.search(r"\b((?:top|upper|bottom|lower)[\s-]*(?:left|right)|(?:left|right)[\s-]*(?:top|upper|"
                  r"bottom|lower))(?:[\s-]*(?:hand\s+)?corner)?\b", text)
    if m:
        return f"the {m.group(1).replace(' ', '-')} corner"
    m = re.search(r"\b(?:at|on|to|in|along|across)\s+(?:the\s+)?(?:very\s+)?(top|bottom|left|right|center|"
                  r"centre|middle)\b(?!\s+of\b)", text)
    if m:
        side = m.group(1)
        return "the center" if side in ("center", "centre", "middle") else f"the {side} side"
    return None


def _outpaint_prompt(text: str) -> str | None:
    m = re.search(r"\bwith\s+(?:more\s+)?(.+)$", text)
    return m.group(1) if m and not re.match(r"\d", m.group(1)) else None


def _split_xy(verb: str, rest: str) -> tuple[str | None, str, str | None]:
    """The object and what it becomes: "the cat on the left to a tiger" -> ("the cat on the
    left", "a tiger"); "the sofa on the right red" -> ("the sofa on the right", "red")."""
    rest = rest.strip()
    # "from A to B" / "X from A to B"
    m = re.match(r"^(?:(.*?)\s+)?from\s+(.+?)\s+(?:to|into)\s+(.+)$", rest)
    if m and verb not in ("give",):
        return (m.group(1) or "it"), m.group(3), m.group(2)
    m = re.match(r"^(.+?)\s+(?:into|in to|to be|to look like|to|so (?:that )?(?:it|they|he|she) "
                 r"(?:looks?|appears?|seems?|is|are)|so it|as|in the style of|with)\s+(.+)$", rest)
    if verb in ("change", "changing", "turn", "turning", "convert", "transform", "morph", "transfer",
                "alter", "modify", "switch", "update", "redo", "redesign", "rework", "remake",
                "restyle", "reimagine", "re-imagine", "regress", "evolve", "upgrade", "downgrade",
                "reshape", "reform", "age", "stylize", "stylise", "style", "render", "shape",
                "regenerate", "become", "go", "apply", "use"):
        if m:
            x, y = m.group(1), m.group(2)
            if x.strip() in ("it", "this", "that", "them") or not re.search(r"\b(?:left|right)\s+of$", x):
                return x, y, None
        if verb in ("switch", "go", "become", "apply", "use", "render") and re.match(r"^(?:to|into)\b", rest):
            return "it", re.sub(r"^(?:to|into)\s+", "", rest), None
        if re.match(r"^(?:to|into|in)\s+", rest):
            return "it", re.sub(r"^(?:to|into|in)\s+", "", rest), None
        # "turn the lower boat magenta", "change it black and white"
        x, y = _np_then_rest(rest)
        return x, y, None
    if verb in ("craft", "carve", "mold", "mould", "cast", "sculpt"):
        mm = re.match(r"^(.+?)\s+(?:out of|from|of|in)\s+(.+)$", rest)
        if mm:
            return mm.group(1), f"out of {mm.group(2)}", None
    # make / let / have / get / paint / colour / dye / tint / render ...
    rest2 = re.sub(r"^(.+?)\s+(?:be|become|to be|look|appear|seem|seems|looks|appears)\s+", r"\1 ", rest)
    if rest2 != rest:
        mm = re.match(r"^(.+?)\s+(?:be|become|to be)\s+(.+)$", rest)
        if mm:
            return mm.group(1), mm.group(2), None
        mm = re.match(r"^(.+?)\s+((?:look|appear|seem|seems|looks|appears)\s+.+)$", rest)
        if mm:
            return mm.group(1), mm.group(2), None
    if m and verb in ("paint", "colour", "color", "recolor", "recolour", "dye", "tint", "cover") and \
            not re.search(r"\b(?:left|right)\s+of$", m.group(1)):
        return m.group(1), m.group(2), None
    x, y = _np_then_rest(rest)
    return x, y, None


_Y_START = _lazy(
    rf"^(?:(?:a|an|the|into|to|more|less|much|very|slightly|bit|look|looks|appear|seem|out|made|"
    rf"wear|wearing|be|like|as|in|so|brighter|darker|lighter|sharper|warmer|cooler|bigger|smaller|"
    rf"larger|taller|shorter|older|younger|with|have|hold|holding|glow|glowing|completely|fully|all|"
    rf"entirely|totally|some|made|from|black and white|{COLOURS}|{MATERIALS}|"
    rf"(?:bright|dark|light|pale|deep|vivid|soft|pastel|neon|hot|baby|navy|sky|matte|glossy)[\s-]+(?:{COLOURS}))\b)")
_ATTR_WORD = _lazy(rf"^(?:{COLOURS}|{MATERIALS})$")


def _np_then_rest(rest: str) -> tuple[str, str]:
    """Split "the sofa on the right red" into the object (with its place phrases) and the rest."""
    words = rest.split()
    if not words:
        return "", ""
    if words[0] in ("it", "this", "that", "them", "him", "her", "he", "she", "they", "everything",
                    "me", "us", "things"):
        # "her hair blonde": a possessive, not a pronoun object
        if words[0] in ("her", "his", "their", "its") and len(words) > 2 and not _Y_START.match(" ".join(words[1:])):
            pass
        else:
            return words[0], " ".join(words[1:])
    i = 0
    n = len(words)
    if n > 2 and _WHOLE.match(" ".join(words[:2])):
        return " ".join(words[:2]), " ".join(words[2:])
    if re.fullmatch(_DET, words[0]) or words[0] in ("his", "her", "their", "its"):
        i = 1
    # modifiers + head noun: stop when what follows reads as the new content
    while i < n:
        tail = " ".join(words[i:])
        if i > 0 and words[i - 1] not in ("the", "a", "an", "his", "her", "their", "its", "my", "of") and (
                _Y_START.match(tail) and not re.match(r"^(?:of|in|on|at|to|with|from)\s+(?:the|his|her|their|its)\b", tail)):
            # a colour or material word before another noun is an adjective ("the metal box")
            if not (_ATTR_WORD.match(words[i]) and i + 1 < n and words[i + 1] not in _BOUNDARY_WORDS
                    and words[i + 1] not in ("one", "a", "an", "the", "ones", "colour", "color")
                    and not _ATTR_WORD.match(words[i + 1])):
                break
        if words[i] in _PREPS_SET and i > 0:
            # a place phrase belongs to the object: "the sofa on the right", "the cup on the table"
            j = i + 1
            if j < n and words[j] in ("the", "his", "her", "their", "its", "this", "that"):
                j += 1
                while j < n and not (_Y_START.match(" ".join(words[j:])) and words[j - 1] not in ("the", "of")
                                     and not (_ATTR_WORD.match(words[j]) and j + 1 < n
                                              and words[j + 1] not in _BOUNDARY_WORDS
                                              and words[j + 1] not in ("one", "a", "an", "the"))) \
                        and words[j] not in _PREPS_SET:
                    j += 1
                i = j
                continue
            break
        i += 1
    x, y = " ".join(words[:i]), " ".join(words[i:])
    if not y and len(words) >= 2 and (len(words) >= 3 or words[0] not in _DETS):
        # "make the left people zombies", "make Monica pregnant": the last word is the new state
        x, y = " ".join(words[:-1]), words[-1]
    return x, y


_CHOICES = ["remove something (\"remove the flag in the top-left corner\")",
            "adjust the whole image (\"make it a bit brighter\")",
            "extend the canvas (\"extend to the right by 25%\")",
            "cut something out (\"cut out the dog\")", "undo"]


def _question(clause: str) -> str:
    return (f"I couldn't tell what edit you want from \"{clause}\". I can remove, add or replace "
            "something, change an object's colour or material, change the background or the style, "
            "adjust the whole image, extend it, cut something out, or undo/redo. What should I do?")
